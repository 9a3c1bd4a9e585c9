"""The Node tools some tests drive (pusher-js, Spectral), installed once from tests/js/package-lock.json."""

from __future__ import annotations

import fcntl
import pathlib
import shutil
import subprocess
import threading

import pytest

JS_DIR = pathlib.Path(__file__).parent / "js"
_lock = threading.Lock()

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm are needed for this test"
)


def ensure_node_tools(marker: str) -> pathlib.Path:
    """Install tests/js when ``marker`` (a path under node_modules) is missing; answer node_modules."""
    modules = JS_DIR / "node_modules"
    # A thread lock for this process, a file lock for pytest-xdist's other workers.
    with _lock, (JS_DIR / ".install.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not (modules / marker).exists():
            # npm ci installs exactly what package-lock.json pins (and fails if it disagrees with package.json).
            result = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return modules
