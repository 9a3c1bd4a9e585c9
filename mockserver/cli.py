"""`mockserver run` serves the mock; `mockserver device ...` drives a simulated intercom of a running mock."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import secrets
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote

import click
import httpx
import uvicorn
import yaml

# Connexion imports Starlette's test client, which warns about httpx; nothing of ours uses it.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from .http.supported import exit_if_unsupported  # noqa: E402

exit_if_unsupported("mockserver")  # before the app's modules, which need what it checks

from .app import VENDOR_APIS, create_app  # noqa: E402  (after the filter and the check above)
from .choices import CHOICES, PRESETS, Choices  # noqa: E402
from .collector import ShortCollections  # noqa: E402
from .control import credentials_json  # noqa: E402
from .domain.clock import ManualClock  # noqa: E402
from .domain.errors import DomainError  # noqa: E402
from .http.connection import BoundedHttpProtocol  # noqa: E402
from .runtime import Settings  # noqa: E402


class Problem(click.ClickException):
    """Something the user can put right (an option's value, a file, a busy port): one line on stderr and exit
    status 2, as click's own usage errors."""

    exit_code = 2


def fail(message: str) -> NoReturn:
    raise Problem(message)


class IsoMoment(click.ParamType):
    """An ISO 8601 time; one without a zone is taken as UTC."""

    name = "ISO_TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time, such as 2030-01-01T08:00:00Z", param, ctx)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _banner(urls: dict[str, str], credentials: dict[str, Any], control_token: str | None) -> str:
    rows = [("API", "base URL", "docs")]
    for name in (*VENDOR_APIS, "control"):
        if name in urls:
            rows.append((name, urls[name], urls[name] + "/docs/"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.append("")
    # Off loopback the token rides in the address once; the panel keeps it in a cookie (mockserver.panel).
    token = f"?token={quote(control_token, safe='')}" if control_token else ""
    lines.append(f"Live panel of the building: {urls['control']}/panel{token}")
    lines.append("")
    lines.append("Demo credentials (also at GET " + urls["control"] + "/credentials):")

    def headers(credential: dict[str, Any]) -> str:
        return "  ".join(f"{name}: {value}" for name, value in credential["headers"].items())

    if "magicline" in urls:
        for key in credentials["magicline"]:
            lines.append(f"  magicline  {headers(key)}  studio {key['studio_id']}  scopes {','.join(key['scopes'])}")
    if "seam" in urls:
        for owner in credentials["seam"]["owners"]:
            lines.append(f"  seam       {headers(owner)}  (login {owner['email']} / {owner['password']})")
    if "vms" in urls:
        for user in credentials["vms"]:
            lines.append(
                f"  vms        {headers(user)}  "
                f"(login {user['login']} / {user['password']}, intercoms {user['intercom_ids']})"
            )
    if control_token:
        lines.append(f"  control    X-Mock-Control-Token: {control_token}")
    return "\n".join(lines)


@click.group()
@click.version_option(package_name="doorcodes-contracts", message="mockserver %(version)s")
def main() -> None:
    """Contract-testing mock of the Magicline, Seam intercom cloud and AIPIX VMS door-access APIs."""


@main.command(short_help="Serve the three vendor APIs and the control API.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE|REDIS_URL",
    help="Where the state lives (default: memory): a SQLite file, which loads as it is when it exists, or a "
    "redis://host:port/db URL (add ?namespace=NAME to keep several buildings apart) shared by every replica.",
)
@click.option(
    "--fixtures",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML building to load into an empty state (default: the built-in demo building).",
)
@click.option("--seed", type=int, help="Make generated ids, codes and tokens repeatable.")
@click.option(
    "--api",
    "apis",
    multiple=True,
    type=click.Choice(VENDOR_APIS),
    help="Serve only these APIs (repeatable; default: all).",
)
@click.option("--public-url", help="Absolute base URL clients see, for paginator links and ws_url behind a proxy.")
@click.option(
    "--control-token", help="Token the control API requires (default: none on loopback, generated otherwise)."
)
@click.option("--clock", "clock_start", type=IsoMoment(), help="Start the simulated clock at this ISO 8601 time.")
@click.option("--frozen-clock", is_flag=True, help="Keep the clock still until moved through the control API.")
@click.option(
    "--magicline-rate-limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Magicline requests per minute per endpoint and key.",
)
@click.option(
    "--wsurl-rate-limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="VMS /wsurl calls per 5 minutes per device.",
)
@click.option(
    "--journal-size",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Requests kept in the journal (0 switches it off).",
)
@click.option("--validate-responses", is_flag=True, help="Check every response against its contract (slower).")
@click.option(
    "--read-cache/--no-read-cache",
    default=True,
    show_default=True,
    help="Serve a read's answer again while no write and no deadline can have changed it.",
)
@click.option(
    "--loop",
    type=click.Choice(["asyncio", "uvloop"]),
    default="asyncio",
    show_default=True,
    help="Event loop. uvloop serves a few more reads a second, but under load keeps some connections waiting "
    "longer (see the README).",
)
@click.option(
    "--choice",
    "choice_values",
    multiple=True,
    metavar="NAME=VALUE",
    help="Switch one of the mock's choices, a behaviour the vendors' documents leave open (repeatable; "
    "`mockserver choices` lists them).",
)
@click.option(
    "--choices",
    "choice_preset",
    type=click.Choice(sorted(PRESETS)),
    help="Start from a preset of choices: `lenient` takes the most permissive value of each (--choice overrides).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="What the server logs; info adds a line per request.",
)
def run(
    host: str,
    port: int,
    state_path: str | None,
    fixtures: str | None,
    seed: int | None,
    apis: tuple[str, ...],
    public_url: str | None,
    control_token: str | None,
    clock_start: datetime | None,
    frozen_clock: bool,
    magicline_rate_limit: int,
    wsurl_rate_limit: int,
    journal_size: int,
    validate_responses: bool,
    read_cache: bool,
    loop: str,
    choice_values: tuple[str, ...],
    choice_preset: str | None,
    log_level: str,
) -> None:
    """Serve the three vendor APIs and the control API on one simulated building."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if control_token is None and not _is_loopback(host):
        control_token = secrets.token_urlsafe(24)
    settings = Settings(
        magicline_rate_limit_per_minute=magicline_rate_limit,
        vms_wsurl_limit_per_5_minutes=wsurl_rate_limit,
        journal_size=journal_size,
    )
    # Bound before anything is printed: a busy port is said plainly, not after a banner of URLs that do not work.
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    try:
        given = Choices.from_arguments(choice_values, choice_preset)
        named = {text.partition("=")[0].strip() for text in choice_values}
        choices = {name: value for name, value in given.to_dict().items() if choice_preset is not None or name in named}
        app = create_app(
            state_path=state_path,
            fixtures=fixtures,
            seed=seed,
            apis=apis or VENDOR_APIS,
            clock=ManualClock(clock_start, frozen=frozen_clock),
            public_url=public_url,
            control_token=control_token,
            settings=settings,
            validate_responses=validate_responses,
            read_cache=read_cache,
            choices=choices,
        )
    except (OSError, ValueError, RuntimeError, DomainError, yaml.YAMLError) as exc:
        sock.close()
        fail(f"cannot start: {exc}")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = (public_url or f"http://{shown_host}:{port}").rstrip("/")
    urls = app.runtime.urls(base)
    click.echo(_banner(urls, credentials_json(app.runtime, urls), control_token))
    # Everything built so far lives as long as the server, and so does most of what later requests add to the
    # building: keep both out of full collections, whose pauses every open connection would wait for.
    ShortCollections().install()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # uvicorn formats each access line before its logger drops it; below info nobody sees them.
        access_log=log_level in ("info", "debug"),
        date_header=False,
        server_header=False,
        ws="websockets-sansio",
        lifespan="off",
        loop=loop,
        http=BoundedHttpProtocol,
    )
    server = _ClosingServer(config, app.runtime.aclose, f"http://{host}:{port}")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # Ctrl+C is how a user stops the mock: uvicorn has shut down cleanly and re-raised it; end quietly, 0.
        return


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn to listen on (uvicorn's own binding ends with exit 1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP, and
    # without it every answer (headers, then body) waited ~40 ms for the client's delayed ACK (23 requests a second
    # on one connection).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is in use; choose another with --port")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    return sock


class _ClosingServer(uvicorn.Server):
    """Closes the state when the server has shut down, on its event loop (whose Redis clients close with it).
    uvicorn re-raises the SIGTERM or SIGINT that stopped it once it is done, which ends the process before any code
    after `run` could run; a SQLite file closed here has its write-ahead log folded in, so copying the file alone
    copies the whole building."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], Awaitable[None]], url: str) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Said once the socket listens (a port in use ends start-up before this), with the loop that serves it.
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        click.echo(f"\nListening on {self._url} ({loop} event loop; Ctrl+C to stop)")
        sys.stdout.flush()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        await self._on_shutdown()


# ---------------------------------------------------------------------------------------------- device


@main.command("choices", short_help="List the mock's choices and their values.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per choice.")
def list_choices(as_json: bool) -> None:
    """List the mock's choices: behaviours the vendors' documents leave open, with their values."""
    if as_json:
        click.echo(json.dumps([choice.as_json() for choice in CHOICES], indent=2))
        return
    rows = [("choice", "api", "values (default first)", "lenient")]
    rows += [(c.name, c.api or "all", " | ".join(c.values), c.lenient) for c in CHOICES]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        click.echo("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
        if index:
            click.echo(f"    {CHOICES[index - 1].reason}")
    click.echo(
        "\nSwitch with `mockserver run --choice NAME=VALUE` (or --choices lenient), the fixtures' `choices:`, "
        "or PUT /_mock/choices."
    )


@main.group()
def fixtures() -> None:
    """Building fixtures: make one from a recorded session."""


@fixtures.command("from-har", short_help="Print a building fixture made from a HAR recording.")
@click.argument("har_file", type=click.File("r", encoding="utf-8"))
def from_har(har_file: Any) -> None:
    """Print (YAML) the building a HAR recording of a vendor session showed: owners, intercoms, codes, customers
    and access mediums. Start a mock from it with `mockserver run --fixtures FILE`."""
    from .har_fixtures import fixtures_from_har

    try:
        har = json.load(har_file)
    except ValueError as exc:
        raise click.ClickException(f"{har_file.name} is not a HAR file (JSON): {exc}") from exc
    click.echo("# Made by `mockserver fixtures from-har` from " + har_file.name + ".")
    click.echo("# Passwords are not recorded: every owner's is `changeme`; tokens are pinned as har-<api>-<owner id>.")
    click.echo(yaml.safe_dump(fixtures_from_har(har), sort_keys=False, allow_unicode=True))


@main.group(short_help="Act at a simulated intercom, as a visitor would.")
@click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    envvar="MOCKSERVER_URL",
    help="Base URL of the running mock.",
)
@click.option("--control-token", envvar="MOCKSERVER_CONTROL_TOKEN", help="Needed when the mock is not on loopback.")
@click.pass_context
def device(ctx: click.Context, url: str, control_token: str | None) -> None:
    """Act at a simulated intercom (INTERCOM is its VMS id or Seam UUID)."""
    headers = {"X-Mock-Control-Token": control_token} if control_token else {}
    ctx.obj = httpx.Client(base_url=url.rstrip("/") + "/_mock", headers=headers, timeout=10)


def _call(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the mock at {client.base_url}: {exc}")
    if response.status_code >= 400:
        fail(f"{response.status_code}: {response.text}")
    return response.json()


def _present(ctx: click.Context, intercom: str, kind: str, value: str) -> None:
    decision = _call(ctx.obj, "POST", f"/intercoms/{intercom}/present", {"kind": kind, "value": value})
    verdict = "GRANTED" if decision["granted"] else "DENIED"
    door = "unlocked until " + decision["door"]["unlocked_until"] if not decision["door"]["locked"] else "locked"
    click.echo(f"{verdict} ({decision['reason']}: {decision.get('detail', '')}); door {door}")
    ctx.exit(0 if decision["granted"] else 1)


@device.command()
@click.argument("intercom")
@click.argument("digits")
@click.pass_context
def keypad(ctx: click.Context, intercom: str, digits: str) -> None:
    """Enter DIGITS on the keypad."""
    _present(ctx, intercom, "keypad", digits)


@device.command()
@click.argument("intercom")
@click.argument("content")
@click.option("--barcode", is_flag=True, help="Read it as a barcode rather than a QR code.")
@click.pass_context
def scan(ctx: click.Context, intercom: str, content: str, barcode: bool) -> None:
    """Scan a QR or barcode CONTENT."""
    _present(ctx, intercom, "barcode" if barcode else "qr", content)


@device.command()
@click.argument("intercom")
@click.argument("kind", type=click.Choice(["card", "pin", "wallet_pass"]))
@click.argument("value")
@click.pass_context
def present(ctx: click.Context, intercom: str, kind: str, value: str) -> None:
    """Present a card number, PIN or wallet pass."""
    _present(ctx, intercom, kind, value)


@device.command()
@click.argument("intercom")
@click.pass_context
def offline(ctx: click.Context, intercom: str) -> None:
    """Take the device offline."""
    click.echo(json.dumps(_call(ctx.obj, "PUT", f"/intercoms/{intercom}/online", {"online": False}), indent=2))


@device.command()
@click.argument("intercom")
@click.pass_context
def online(ctx: click.Context, intercom: str) -> None:
    """Bring the device back online (queued changes sync)."""
    click.echo(json.dumps(_call(ctx.obj, "PUT", f"/intercoms/{intercom}/online", {"online": True}), indent=2))


@device.command()
@click.argument("intercom")
@click.pass_context
def show(ctx: click.Context, intercom: str) -> None:
    """Show the device: door, online flag, queued changes."""
    click.echo(json.dumps(_call(ctx.obj, "GET", f"/intercoms/{intercom}"), indent=2))


@device.command()
@click.argument("intercom")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="Most recent events to show."
)
@click.pass_context
def events(ctx: click.Context, intercom: str, limit: int) -> None:
    """Print the device's event log, oldest first."""
    found = _call(ctx.obj, "GET", f"/intercoms/{intercom}/events?limit={limit}")["events"]
    if not found:
        click.echo(f"No events on intercom {intercom} yet.")
    for event in found:
        click.echo(f"{event['at']}  {event['type']:<16} {json.dumps(event.get('detail', {}))}")


if __name__ == "__main__":
    main()
