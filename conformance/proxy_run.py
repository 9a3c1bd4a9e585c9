"""Running the proxy: listen, forward and judge until SIGINT or SIGTERM, then write the report, the JUnit file and
the HAR recording, and answer the exit code (1 when the server broke the contract)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import click
import uvicorn

from .har import write_har
from .proxy import ProxyApp, Recorder, report
from .reports import EXIT_ERROR, EXIT_FAILED, EXIT_OK

__all__ = ["RunningProxy", "serve_proxy", "start_proxy"]


def serve_proxy(
    api: str,
    upstream: str,
    *,
    host: str,
    port: int,
    report_path: str | None = None,
    har_path: str | None = None,
    junit: str | None = None,
    strict: bool = False,
    quiet: bool = False,
) -> int:
    def print_line(text: str) -> None:
        if not quiet or " ✗ " in text:
            click.echo(text)
            sys.stdout.flush()

    recorder = Recorder(api, print_line, strict=strict, keep=har_path is not None)
    app = ProxyApp(upstream, recorder)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, proxy_headers=False)
    server = _StoppableServer(config)
    click.echo(
        f"conformance proxy for {api}: http://{host}:{port} -> {upstream} "
        f"({'strict' if strict else 'the vendor view'}; Ctrl+C writes the report)",
        err=True,
    )
    try:
        listening = listening_socket(host, port)
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        return EXIT_ERROR
    server.run(sockets=[listening])
    if not server.started:
        click.echo(f"error: cannot listen on {host}:{port}", err=True)
        return EXIT_ERROR
    recorder.close()
    document = report(recorder, upstream)
    if report_path:
        pathlib.Path(report_path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if har_path:
        write_har(har_path, recorder.exchanges, api)
    if junit:
        write_proxy_junit(junit, api, document)
    servers, clients = len(document["server_violations"]), len(document["client_violations"])
    click.echo(
        f"{document['exchanges']} exchanges: {servers} server violations, {clients} client violations, "
        f"{len(document['notes'])} notes",
        err=True,
    )
    return EXIT_FAILED if servers else EXIT_OK


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket whose connections send small writes at once: without TCP_NODELAY, an answer's body
    written after its head waits for the client's delayed ACK (~40 ms an exchange, measured)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


class _StoppableServer(uvicorn.Server):
    """uvicorn's server, except that SIGINT or SIGTERM only stops it: uvicorn would raise the signal again once
    stopped, and the process would die before writing its report."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def write_proxy_junit(path: str, api: str, document: dict) -> None:
    """JUnit XML: one suite per side, a failing test case per violation (with its reproduction)."""
    root = ET.Element("testsuites", name="conformance proxy")
    for side in ("server", "client"):
        items = document[f"{side}_violations"]
        suite = ET.SubElement(root, "testsuite", name=f"{api} {side}", tests=str(max(1, len(items))))
        suite.set("failures", str(len(items)))
        if not items:
            ET.SubElement(suite, "testcase", classname=f"{api}.{side}", name="exchanges")
        for item in items:
            case = ET.SubElement(suite, "testcase", classname=f"{api}.{side}.{item['check']}", name=item["operation"])
            failure = ET.SubElement(case, "failure", message=item["what"][:500], type=item["check"])
            failure.text = f"{item['what']}\n{item['times']} times\n{item['curl']}"
    ET.indent(root)
    pathlib.Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


class RunningProxy:
    """A proxy serving on a thread of the calling process (`start_proxy`)."""

    def __init__(self, api: str, upstream: str, *, strict: bool = False, record: bool = False) -> None:
        self.lines: list[str] = []
        self.recorder = Recorder(api, self.lines.append, strict=strict, keep=record)
        self.upstream = upstream
        self.api = api
        config = uvicorn.Config(
            ProxyApp(upstream, self.recorder), log_level="warning", lifespan="on", access_log=False, proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.socket = listening_socket("127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])), name="conformance-proxy", daemon=True
        )

    def __enter__(self) -> RunningProxy:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
        self.recorder.close()

    def report(self) -> dict:
        """The report, once the proxy has stopped."""
        return report(self.recorder, self.upstream)


def start_proxy(api: str, upstream: str, *, strict: bool = False, record: bool = False) -> RunningProxy:
    """A proxy on a free 127.0.0.1 port for the `with` block (for tests and embedding)."""
    return RunningProxy(api, upstream, strict=strict, record=record)
