"""Running the offline page's JavaScript modules in Node, for the tests that hold them against the Python they copy."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from leafdoc.offline.routes import STATIC

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run_node(script: str, module: str, given: object, *args: str, check: bool = True):
    """`script` (an ES module's code) run in Node with the page's `module` (a file of offline/static) and `args` as
    its arguments, `given` as JSON on its standard input; what it prints, read as JSON. With `check=False`, the
    finished process instead, whatever its exit code."""
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, str(STATIC / module), *args],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )
    return json.loads(done.stdout) if check else done
