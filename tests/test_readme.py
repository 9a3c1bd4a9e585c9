"""The README does what it says for a newcomer: its shell session runs against a mock started as it says, block
by block, top to bottom on a fresh building and in the other order after a reset; its Python example runs; and
everything it installs comes from the repository (no package index has a release)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DEFAULT_BASE = "127.0.0.1:8080"


def _blocks(language: str) -> list[tuple[str, str]]:
    """(the heading above it, the code) of every fenced block in ``language``."""
    found = []
    heading = ""
    for part in re.split(r"^(```[a-z]*\n.*?^```)$", README, flags=re.S | re.M):
        if part.startswith("```"):
            if part.startswith(f"```{language}\n"):
                found.append((heading, part.split("\n", 1)[1].rsplit("```", 1)[0]))
        else:
            headings = re.findall(r"^## (.+)$", part, flags=re.M)
            heading = headings[-1] if headings else heading
    return found


def _session_blocks() -> list[tuple[str, str]]:
    """The shell blocks that talk to the running mock (not the install, replica or conformance commands)."""
    return [
        (heading, code)
        for heading, code in _blocks("sh")
        if (DEFAULT_BASE in code or "mockserver device" in code) and "mockserver run" not in code
    ]


def _commands(code: str) -> list[str]:
    """The block's commands: continued lines joined, comments and blank lines dropped."""
    commands, current = [], ""
    for line in code.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if not line.endswith("\\"):
            commands.append(current)
            current = ""
    return commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path]]:
    """A mock started as the README says, on a free port, and a shell set up as the newcomer's: `.venv/bin/` has
    the `mockserver` command, the device commands find the mock, and curl fails on an HTTP error status (so a
    refused request fails its command, where `curl -s` alone would print the error and succeed)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the README's session uses curl, which this machine does not have")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "run", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("Listening on"):
                break
        else:
            raise AssertionError("the mock did not start")
        venv_bin = tmp_path / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        (venv_bin / "mockserver").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mockserver "$@"\n')
        (venv_bin / "mockserver").chmod(0o755)
        tools = tmp_path / "tools"
        tools.mkdir()
        (tools / "curl").write_text(f'#!/bin/sh\nexec "{curl}" --fail-with-body "$@"\n')
        (tools / "curl").chmod(0o755)
        env = {
            **os.environ,
            "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
            "MOCKSERVER_URL": f"http://127.0.0.1:{port}",
        }
        yield port, env, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def _run_block(heading: str, code: str, port: int, env: dict[str, str], cwd: Path) -> list[str]:
    """Run the block's commands in one shell (a command may use a variable an earlier one set); fail naming the
    first command that did not succeed. Answers each command's output."""
    commands = _commands(code.replace(DEFAULT_BASE, f"127.0.0.1:{port}"))
    marked = [f"{command}echo; echo '@@done {i}'\n" for i, command in enumerate(commands)]
    script = "set -e -o pipefail\n" + "".join(marked)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    outputs = re.split(r"^@@done \d+\n", result.stdout, flags=re.M)
    done = len(outputs) - 1
    assert result.returncode == 0 and done == len(commands), (
        f"README, '{heading}': this command failed:\n{commands[min(done, len(commands) - 1)]}\n"
        f"output: {outputs[-1]}\n{result.stderr}"
    )
    return outputs[:-1]


def test_the_session_is_where_the_readme_has_it() -> None:
    headings = [heading for heading, _ in _session_blocks()]
    assert headings[0] == "A short session through all three APIs" and headings[-1] == "Watching a door open"
    assert all(_commands(code) for _, code in _session_blocks())


def test_the_session_runs_top_to_bottom_then_in_the_other_order_after_a_reset(
    newcomer: tuple[int, dict[str, str], Path],
) -> None:
    port, env, cwd = newcomer
    blocks = _session_blocks()
    outputs = [_run_block(heading, code, port, env, cwd) for heading, code in blocks]
    # What the comments promise: the code is expired after the clock moved, the keypad let the guest in.
    assert re.search(r'"is_expired":\s*true', outputs[0][-1]), outputs[0][-1]
    assert any(output.startswith("GRANTED") for output in outputs[-1])
    # Every pair of blocks also runs in the other order (from a fresh building again).
    httpx.post(f"http://127.0.0.1:{port}/_mock/reset").raise_for_status()
    for heading, code in reversed(blocks):
        _run_block(heading, code, port, env, cwd)


def test_the_python_example_runs(tmp_path: Path) -> None:
    (example,) = [code for heading, code in _blocks("python") if heading == "From Python tests"]
    result = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_everything_the_readme_installs_comes_from_the_repository() -> None:
    installs = re.findall(r"pip install ([^\n`&]+)", README)
    assert installs, "the README no longer says how to install"
    for arguments in installs:
        # `-c FILE` names a constraints file (the repository's), which installs nothing by itself
        words = re.sub(r"(^|\s)(-c|--constraint)\s+\S+", " ", arguments).split()
        requirements = [word.strip("'\"") for word in words if not word.startswith("-")]
        from_repository = (
            "git+" in arguments  # "doorcodes-contracts @ git+https://..."
            or all(requirement.startswith(".") or requirement.endswith(".whl") for requirement in requirements)
        )
        assert from_repository, f"`pip install {arguments.strip()}` asks a package index, which has no release"


def _magicline_calls() -> list[tuple[str, str, bool]]:
    """(method, path, deprecated) of each Magicline call the README's session makes, in order."""
    from mockserver.contracts import load_contract

    paths = load_contract("magicline").raw["paths"]
    calls = []
    for _, code in _session_blocks():
        for command in _commands(code):
            found = re.search(r"http://127\.0\.0\.1:8080/magicline(/[^\s'?]*)", command)
            if found is None:
                continue
            method = re.search(r"-X (\w+)", command)
            verb = (method.group(1) if method else "GET").lower()
            for template, item in paths.items():
                if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), found.group(1)) and verb in item:
                    calls.append((verb, found.group(1), bool(item[verb].get("deprecated"))))
    return calls


def test_the_magicline_example_shows_the_current_way_first() -> None:
    calls = _magicline_calls()
    assert calls and not calls[0][2], calls
    mediums = [call for call in calls if "/access-medium" in call[1]]
    assert mediums and not mediums[0][2], f"the first access-medium call is a deprecated one: {mediums}"
    deprecated = [i for i, (_, _, old) in enumerate(calls) if old]
    current = [i for i, (_, _, old) in enumerate(calls) if not old]
    assert not deprecated or max(current) < min(deprecated), calls


def test_ci_runs_the_readmes_test_command() -> None:
    """CI installs and tests exactly as the README tells a newcomer to (with the pinned constraints)."""
    (command,) = [code.strip() for heading, code in _blocks("sh") if code.strip().endswith("-m pytest")]
    assert "-c constraints.txt" in command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines()
