"""A count in words: "1 class", "12 classes", "1,204 photos" (the desktop app said "1 classes")."""

from __future__ import annotations


def counted(n: int, word: str, words: str | None = None) -> str:
    """`n` `word`s, the plural `words` when it is not `word` + "s" ("es" after an "s")."""
    many = words or (word + "es" if word.endswith("s") else word + "s")
    return f"{n:,} {word if n == 1 else many}"
