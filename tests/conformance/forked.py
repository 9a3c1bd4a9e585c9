"""`python -m conformance ...` for the tests, without paying for the suite's imports on every run.

A run of the command line spends about a second importing Schemathesis, Hypothesis and openapi-core before it
sends a request, and the tests run it about fifty times. Here one process per test worker imports the command
line and does nothing else; each run is a child forked from it, with its own stdout and stderr. A child starts
from the state a fresh interpreter reaches after those imports (nothing has run, no thread exists), so its run
generates what a user's would.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from threading import Lock
from typing import IO

#: the zygote's loop: read one JSON request per line, fork, answer the child's exit status
_ZYGOTE = r"""
import json, os, sys
import conformance.cli
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
    else:
        try:
            sys.stdin.close()  # the zygote's requests are not the child's input
            write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            streams = ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], write), (2, request["stderr"], write))
            for fd, path, mode in streams:
                target = os.open(path, mode)
                os.dup2(target, fd)
                os.close(target)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            code = 0
            try:
                conformance.cli.main(request["args"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""

_lock = Lock()
_zygote: subprocess.Popen[str] | None = None


def _started() -> subprocess.Popen[str]:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        _zygote = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        atexit.register(_zygote.kill)
    return _zygote


def run_conformance(
    args: list[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """What `subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True)` gives."""
    with tempfile.TemporaryDirectory() as where, _lock:
        out, err = Path(where, "stdout"), Path(where, "stderr")
        zygote = _started()
        stdin, stdout = zygote.stdin, zygote.stdout
        assert stdin is not None and stdout is not None
        request = {
            "args": args,
            "stdout": str(out),
            "stderr": str(err),
            "cwd": str(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
        }
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        child = int(_line(stdout, 10))
        try:
            code = int(_line(stdout, timeout))
        except subprocess.TimeoutExpired:
            os.kill(child, signal.SIGKILL)
            _line(stdout, 10)
            raise
        return subprocess.CompletedProcess(
            [sys.executable, "-m", "conformance", *args], code, out.read_text(), err.read_text()
        )


def _line(stdout: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stdout], [], [], timeout)
    if not ready:
        raise subprocess.TimeoutExpired("conformance", timeout)
    line = stdout.readline()
    if not line:
        raise RuntimeError("the conformance zygote died")
    return line
