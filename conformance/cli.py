"""`conformance run` (bounded, repeatable: the CI gate) and `conformance fuzz` (open-ended, saves what it finds).

Exit codes: 0 the server conforms, 1 it does not, 2 the run could not be done (bad options or config, unreachable
server, refused credentials, unreadable contract).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import engine
from .events import Event, Outcome, RunFinished, RunStarted, StageStarted
from .redact import Redactor
from .reports import EXIT_ERROR, FindingStore, Summary, write_junit
from .target import APIS, SCHEMATHESIS_PHASES, STAGES, ConfigError, Options, Target, load_config, target_from_values

__all__ = ["main"]

_TARGET_OPTIONS = (
    "api",
    "base_url",
    "login",
    "password",
    "token",
    "api_key",
    "other_login",
    "other_password",
    "other_token",
    "other_api_key",
    "limited_api_key",
    "intercom_id",
    "customer_id",
    "disposable_code_id",
)


def _target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False),
            help="TOML file with [[target]] tables (several APIs at once).",
        ),
        click.option("--api", type=click.Choice(APIS), help="Which vendor API the server implements."),
        click.option("--base-url", help="The API's base URL (no trailing slash needed)."),
        click.option("--login", envvar="CONFORMANCE_LOGIN", help="VMS login."),
        click.option("--password", envvar="CONFORMANCE_PASSWORD", help="VMS password [env CONFORMANCE_PASSWORD]."),
        click.option("--token", envvar="CONFORMANCE_TOKEN", help="Seam bearer token [env CONFORMANCE_TOKEN]."),
        click.option("--api-key", envvar="CONFORMANCE_API_KEY", help="Magicline API key [env CONFORMANCE_API_KEY]."),
        click.option("--other-login", help="Another tenant: VMS login."),
        click.option("--other-password", envvar="CONFORMANCE_OTHER_PASSWORD", help="Another tenant: VMS password."),
        click.option("--other-token", envvar="CONFORMANCE_OTHER_TOKEN", help="Another tenant: Seam token."),
        click.option(
            "--other-api-key",
            envvar="CONFORMANCE_OTHER_API_KEY",
            help="Another tenant: a Magicline key of another studio.",
        ),
        click.option(
            "--limited-api-key",
            envvar="CONFORMANCE_LIMITED_API_KEY",
            help="Magicline key of the same studio without CUSTOMER_ACCESS_MEDIUM_WRITE.",
        ),
        click.option("--intercom-id", type=int, help="VMS: the test intercom codes may be created on."),
        click.option("--customer-id", type=int, help="Magicline: the test customer mediums may be added to."),
        click.option("--disposable-code-id", help="Seam: a code that may be deleted."),
        click.option("--seed", type=int, default=None, help="Seed of generation (run: 0 by default)."),
        click.option(
            "--max-examples",
            type=click.IntRange(1),
            default=10,
            show_default=True,
            help="Generated examples per operation (and state machine runs).",
        ),
        click.option(
            "--max-steps", type=click.IntRange(2), default=8, show_default=True, help="Steps per stateful scenario."
        ),
        click.option(
            "--stage",
            "stages",
            multiple=True,
            type=click.Choice(STAGES),
            help="Only these stages (repeatable; default: all).",
        ),
        click.option(
            "--phase",
            "phases",
            multiple=True,
            type=click.Choice(SCHEMATHESIS_PHASES),
            help="Only these Schemathesis phases (repeatable; default: all).",
        ),
        click.option("--read-only", is_flag=True, help="Only GET and HEAD."),
        click.option(
            "--strict",
            is_flag=True,
            help="Judge the whole contract, the mock's own choices included (for the mock itself or a "
            "re-implementation of it). By default a vendor is held to its documents only, and a difference from "
            "a mock choice is a note.",
        ),
        click.option("--allow-destructive", is_flag=True, help="Let PUT and DELETE touch ids this run did not create."),
        click.option("--allow-door-unlock", is_flag=True, help="Let the run open doors."),
        click.option(
            "--max-rps",
            type=float,
            default=None,
            help="Requests per second (default: 10, unlimited on loopback; 0 = unlimited).",
        ),
        click.option(
            "--timeout", "request_timeout", type=float, default=10.0, show_default=True, help="Seconds per request."
        ),
        click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here."),
        click.option("--no-progress", is_flag=True, help="No progress display."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _build(params: dict[str, Any], *, fuzzing: bool) -> tuple[list[Target], Options]:
    options = Options(
        seed=params["seed"] if params["seed"] is not None else (None if fuzzing else 0),
        max_examples=params["max_examples"],
        max_steps=params["max_steps"],
        stages=tuple(params["stages"]) or STAGES,
        schemathesis_phases=tuple(params["phases"]) or SCHEMATHESIS_PHASES,
        read_only=params["read_only"],
        strict=params["strict"],
        allow_destructive=params["allow_destructive"],
        allow_door_unlock=params["allow_door_unlock"],
        max_rps=params["max_rps"],
        request_timeout=params["request_timeout"],
        max_time=params.get("max_time"),
    )
    given = {name: params[name] for name in _TARGET_OPTIONS if params.get(name) is not None}
    if params["config_path"]:
        if given.get("api") or given.get("base_url"):
            raise ConfigError("give either --config or --api/--base-url, not both")
        targets, options = load_config(params["config_path"], options)
    else:
        if not given.get("api") or not given.get("base_url"):
            raise ConfigError("--api and --base-url are required (or --config)")
        targets = [target_from_values(given, "options")]
    problems = [problem for target in targets for problem in target.problems()]
    if problems:
        raise ConfigError("\n".join(problems))
    return targets, options


class _Display:
    """Progress on stderr: a live spinner on a terminal, plain stage lines otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.live = enabled and self.console.is_terminal
        self.plain = enabled and not self.live
        self.failed: dict[str, set[str]] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.live,
        )
        self.tasks: dict[str, Any] = {}
        #: stages already printed per target (a fuzz run goes round them again and again)
        self.printed: dict[str, set[str]] = {}

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def handle(self, event: Event) -> None:
        name = event.target
        if isinstance(event, RunStarted):
            self.tasks[name] = self.progress.add_task(f"{name}: starting", total=None)
        elif isinstance(event, Outcome) and event.status == "failed":
            self.failed.setdefault(name, set()).add(event.check)
        if isinstance(event, StageStarted):
            failing = len(self.failed.get(name, ()))
            text = f"{name}: {event.stage}" + (f"  ({failing} failing checks)" if failing else "")
            if name in self.tasks:
                self.progress.update(self.tasks[name], description=text)
            if self.plain and event.stage not in self.printed.setdefault(name, set()):
                self.printed[name].add(event.stage)
                self.console.print(text, markup=False)
        elif isinstance(event, RunFinished) and name in self.tasks:
            self.progress.update(self.tasks[name], description=f"{name}: done", visible=False)


def _execute(
    targets: list[Target],
    options: Options,
    *,
    fuzzing: bool,
    junit: str | None,
    progress: bool,
    store: FindingStore | None = None,
) -> int:
    redactor = Redactor(secret for target in targets for secret in target.secrets())
    summary = Summary(redactor)
    sinks: list[Callable[[Event], None]] = [summary.handle]
    if store is not None:
        store.redactor = redactor
        sinks.append(store.handle)
    with _Display(progress) as display:
        sinks.append(display.handle)
        for target in targets:
            stream: Iterable[Event] = engine.fuzz(target, options) if fuzzing else engine.run(target, options)
            for event in stream:
                for sink in sinks:
                    sink(event)
    Console(highlight=False, soft_wrap=True).print(summary.render(), markup=False)
    if store is not None:
        if store.saved:
            click.echo(f"\n{len(store.saved)} findings saved in {store.directory}/")
        else:
            click.echo("\nno findings: nothing saved")
    if junit:
        write_junit(summary, junit)
    return summary.exit_code


@click.group()
@click.version_option(package_name="doorcodes-contracts", message="conformance %(version)s")
def cli() -> None:
    """Check a Magicline, Seam-compatible or AIPIX VMS server against its contract."""


@cli.command()
@_target_options
def run(**params: Any) -> None:
    """A bounded, repeatable run: the same server gives the same verdict (exit 0, 1 or 2)."""
    try:
        targets, options = _build(params, fuzzing=False)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(_execute(targets, options, fuzzing=False, junit=params["junit"], progress=not params["no_progress"]))


@cli.command()
@_target_options
@click.option("--max-time", type=click.IntRange(1), default=600, show_default=True, help="Seconds to keep going.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="conformance-findings",
    show_default=True,
    help="Where to save findings (JSON plus a replay script each).",
)
def fuzz(**params: Any) -> None:
    """Keep generating until --max-time; save each finding as reproducible curl commands plus the seed."""
    try:
        targets, options = _build(params, fuzzing=True)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    store = FindingStore(params["out_dir"])
    sys.exit(
        _execute(targets, options, fuzzing=True, junit=params["junit"], progress=not params["no_progress"], store=store)
    )


@cli.command()
@click.option("--api", required=True, type=click.Choice(APIS), help="Which vendor API the upstream implements.")
@click.option(
    "--upstream", required=True, help="The API's base URL at the vendor (or the mock), e.g. http://127.0.0.1:8080/vms."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the JSON report here on exit.")
@click.option("--record", "har_path", type=click.Path(dir_okay=False), help="Record every exchange as HAR 1.2 here.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here on exit.")
@click.option("--strict", is_flag=True, help="Judge the whole contract, the mock's own choices included.")
@click.option("--quiet", is_flag=True, help="Print only exchanges that broke something.")
def proxy(
    api: str,
    upstream: str,
    port: int,
    host: str,
    report_path: str | None,
    har_path: str | None,
    junit: str | None,
    strict: bool,
    quiet: bool,
) -> None:
    """Forward an application's traffic to the vendor and check every exchange against the contract (stop with
    Ctrl+C or SIGTERM: the report is written, exit 1 when the server broke the contract)."""
    from .proxy_run import serve_proxy

    if urlsplit(upstream).scheme not in ("http", "https"):
        click.echo(f"error: --upstream {upstream!r} is not an http(s) URL", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(
        serve_proxy(
            api,
            upstream,
            host=host,
            port=port,
            report_path=report_path,
            har_path=har_path,
            junit=junit,
            strict=strict,
            quiet=quiet,
        )
    )


@cli.command("checks")
@click.option("--api", type=click.Choice(APIS), help="Only this API.")
def list_checks(api: str | None) -> None:
    """List the domain checks and the mock's choices that the default run notes rather than fails."""
    from mockserver.contracts import load_contract

    from .checks import catalogue

    for name in [api] if api else APIS:
        click.echo(f"{name}: domain checks (Schemathesis' generic checks run as well)")
        for info in catalogue(name):
            needs = f"  [needs {', '.join(info.needs)}]" if info.needs else ""
            click.echo(f"  {info.name}  ({info.kind}){needs}")
            click.echo(_wrapped(info.doc))
        marks = load_contract(name).marks()
        click.echo(f"\n{name}: the mock's choices in the contract ({len(marks)}; a vendor may differ there)")
        for mark in marks:
            keywords = ", ".join(mark.keywords) if mark.keywords else "the whole of it"
            choice = f"  [mockserver choice {mark.choice}]" if mark.choice else ""
            click.echo(f"  {mark.where}: {keywords}{choice}")
            click.echo(_wrapped(mark.reason))
        click.echo("")


def _wrapped(text: str) -> str:
    # Never break inside a word: names like `private-user.{id}` must stay whole to be searched for.
    return textwrap.fill(
        " ".join(text.split()),
        width=100,
        initial_indent="      ",
        subsequent_indent="      ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`conformance`)."""
    cli.main(args=argv, prog_name="conformance")


if __name__ == "__main__":
    main()
