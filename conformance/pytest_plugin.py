"""The conformance suite as a pytest gate.

    pytest --conformance-config conformance.toml            # the same TOML file `conformance run --config` reads
    pytest --conformance-api seam --conformance-base-url https://devicecloud.example.com   # token from
                                                             # CONFORMANCE_TOKEN (or _PASSWORD / _API_KEY)

Each target becomes one test item (``conformance[<api>]``) that runs the bounded suite and fails with the
readable summary (failures by check and operation, reproducing curl commands, the seed). Without these options
the plugin adds nothing. Programs get the same through `conformance.run`.

Every pytest run in an environment with the package imports this plugin, so the engine (Schemathesis and the
rest) is imported only when a target is run.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from .target import ConfigError, Credentials, Options, Target, load_config


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "check vendor servers against the door-access contracts")
    group.addoption("--conformance-config", help="TOML file with [[target]] tables (as `conformance run --config`).")
    group.addoption("--conformance-api", choices=("magicline", "seam", "vms"), help="One API to check.")
    group.addoption("--conformance-base-url", help="Its base URL.")
    group.addoption("--conformance-login", help="VMS login (password from CONFORMANCE_PASSWORD).")
    group.addoption("--conformance-seed", type=int, default=0, help="Seed of generation (default 0).")


def _targets(config: pytest.Config) -> tuple[list[Target], Options]:
    options = Options(seed=config.getoption("conformance_seed"))
    path = config.getoption("conformance_config")
    if path:
        return load_config(path, options)
    api, base_url = config.getoption("conformance_api"), config.getoption("conformance_base_url")
    if not api and not base_url:
        return [], options
    if not (api and base_url):
        raise pytest.UsageError("--conformance-api and --conformance-base-url go together")
    credentials = Credentials(
        login=config.getoption("conformance_login"),
        password=os.environ.get("CONFORMANCE_PASSWORD"),
        token=os.environ.get("CONFORMANCE_TOKEN"),
        api_key=os.environ.get("CONFORMANCE_API_KEY"),
    )
    return [Target(api=api, base_url=base_url, credentials=credentials)], options


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        targets, options = _targets(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    for target in targets:
        items.append(
            ConformanceItem.from_parent(session, name=f"conformance[{target.name}]", target=target, options=options)
        )


class ConformanceError(Exception):
    """The server did not conform; the message is the summary."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, target: Target, options: Options, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.options = options

    def runtest(self) -> None:
        from .engine import run
        from .reports import Summary

        summary = Summary().consume(run(self.target, self.options))
        if summary.exit_code == 2:
            pytest.skip(f"the run could not be done:\n{summary.render()}")
        if summary.exit_code != 0:
            raise ConformanceError(summary.render())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name
