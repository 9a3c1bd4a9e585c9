"""The domain stays free of HTTP and of store backends; the package exports what its docstring promises."""

from __future__ import annotations

import ast
import pathlib

import mockserver

DOMAIN = pathlib.Path(mockserver.__file__).parent / "domain"
FORBIDDEN = (
    "connexion",
    "starlette",
    "uvicorn",
    "httpx",
    "mockserver.store.memory",
    "mockserver.store.sqlite",
    "mockserver.http",
    "mockserver.vendors",
    "mockserver.app",
)


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against mockserver.domain
                base = ["mockserver", "domain"][: 3 - node.level] if node.level <= 2 else []
                module = ".".join([*base, module]) if module else ".".join(base)
            names.add(module)
    return names


def test_the_domain_imports_no_framework_and_no_backend() -> None:
    offenders = {
        path.name: sorted(name for name in _imports(path) if name.startswith(FORBIDDEN)) for path in DOMAIN.glob("*.py")
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_the_package_exports_its_entry_points() -> None:
    assert sorted(mockserver.__all__) == ["ManualClock", "RunningMock", "Settings", "create_app", "start_mock"]
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None
