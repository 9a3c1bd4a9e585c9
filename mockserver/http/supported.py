"""The framework releases this mock was tested with, checked when it starts.

The compiled pipeline and the validators lean on parts of Connexion, Starlette and uvicorn that are not their
public API (`connexion_internals`, `starlette_internals`, `connection`). Those parts change between minor releases
without notice: Connexion 3.2 changed the shape of `wrap_receive`, and with 3.1 a valid request answered 500.
So each of those modules checks at import that the installed release is one the tests ran on and that what it
uses is there, and otherwise refuses to start with one line naming the release (`mockserver run` exits 2).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import typing as t


class UnsupportedFramework(RuntimeError):
    """An installed framework is not a release this mock was tested with, or lacks what the mock uses."""


def release(distribution: str) -> tuple[int, ...]:
    """The installed release of ``distribution`` as numbers (``3.3.0`` -> (3, 3, 0), ``1.0rc1`` -> (1, 0))."""
    found = re.match(r"\d+(\.\d+)*", importlib.metadata.version(distribution))
    return tuple(int(part) for part in found.group().split(".")) if found else ()


def require(
    framework: str,
    installed: tuple[int, ...],
    lowest: tuple[int, ...],
    below: tuple[int, ...],
    needed: t.Iterable[tuple[object, str]] = (),
) -> None:
    """Raise `UnsupportedFramework` unless ``lowest <= installed < below`` and each ``(owner, name)`` exists."""
    shown = _shown(installed, max(2, len(lowest)))  # 0.52.0 against a bound of 0.52.4 names the patch release
    tested = f">={'.'.join(map(str, lowest))},<{'.'.join(map(str, below))}"
    if not lowest <= installed < below:
        raise UnsupportedFramework(f"unsupported {framework} {shown}: this mock is tested with {framework}{tested}")
    missing = [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in needed if not hasattr(owner, name)]
    if missing:
        raise UnsupportedFramework(f"unsupported {framework} {shown}: it lacks {', '.join(missing)}")


def unsupported(framework: str, reason: str) -> UnsupportedFramework:
    """The error for an installed ``framework`` that lacks something this mock uses."""
    return UnsupportedFramework(f"unsupported {framework} {_shown(release(framework))}: {reason}")


def _shown(installed: tuple[int, ...], parts: int = 2) -> str:
    return ".".join(map(str, installed[:parts]))


#: the modules that check a framework when imported
CHECKS = ("mockserver.http.connexion_internals", "mockserver.http.starlette_internals", "mockserver.http.connection")


def exit_if_unsupported(program: str) -> None:
    """Run the framework checks; on a release this mock was not tested with, say so in one line on stderr and
    exit with status 2 (as a usage error), instead of starting a server that would answer with 500s."""
    try:
        for module in CHECKS:
            importlib.import_module(module)
    except UnsupportedFramework as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
