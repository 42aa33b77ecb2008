"""The offline page's ES modules (offline/static/*.js) that the web page runs too, made plain functions to inline in
its head scripts (`/ui` loads no modules of its own): one copy of that code for both pages."""

from __future__ import annotations

from pathlib import Path

OFFLINE_STATIC = Path(__file__).parents[1] / "offline" / "static"


def offline_module(name: str) -> str:
    """offline/static/`name`'s code with its `export`s dropped (such a module imports nothing)."""
    code = (OFFLINE_STATIC / name).read_text(encoding="utf-8")
    return code.replace("export async function", "async function").replace("export function", "function")
