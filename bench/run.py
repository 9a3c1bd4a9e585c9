"""Benchmark the mock against Stoplight Prism on the same contracts, on this machine, in one run.

    python bench/run.py                 # everything (the 1,000,000-code building takes a few minutes to build)
    python bench/run.py --quick         # shorter runs, sizes up to 10,000
    python bench/run.py --only load     # one part: load, inprocess, startup, sizes, replicas, conformance

Everything binds to 127.0.0.1. Load comes from wrk (32 connections, one server worker, warm-up first); the servers
take turns for a few short rounds and the table shows medians; rate limits are raised for the run. The table goes to
stdout and, as JSON, to bench/results/ for comparison between commits.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import functools
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
CACHE = RESULTS / "cache"
PRISM = BENCH / "node_modules" / ".bin" / "prism"
DEMO = ROOT / "mockserver" / "fixtures" / "demo.yaml"

HOUSE_UUID = "3043fde0-3c6d-4913-981f-2607f05fe74e"  # intercom 180, Alice's
BULK_INTERCOM = 181  # Alice's other intercom: its codes fill her VMS list but not Seam's list of the House
ML_HEADERS = {"X-API-KEY": "demo-magicline-mission"}
VMS_HEADERS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "bench"}
SEAM_HEADERS = {"Authorization": "Bearer demo-seam-alice"}
RAISED_LIMIT = "1000000000"


# -- processes ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def process(
    args: list[str],
    ready_url: str,
    *,
    timeout: float = 900,
    headers: dict[str, str] | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    poll_s: float = 0.01,
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server, wait until ``ready_url`` answers 2xx (asking every ``poll_s``); yield it with its start-up
    time in seconds."""
    # stderr to a file, not a pipe: a chatty server must never block on a pipe nobody reads.
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            deadline = started + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {log.read().decode()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready_url, headers=headers, timeout=1).is_success:
                        break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{ready_url} did not answer within {timeout} s")
                time.sleep(poll_s)
            yield proc, time.perf_counter() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ours(
    port: int,
    *,
    fixtures: Path | None = None,
    state: Path | None = None,
    read_cache: bool = True,
    loop: str = "asyncio",
) -> list[str]:
    args = [sys.executable, "-m", "mockserver", "run", "--port", str(port), "--seed", "0"]
    args += ["--magicline-rate-limit", RAISED_LIMIT, "--wsurl-rate-limit", RAISED_LIMIT]
    if fixtures:
        args += ["--fixtures", str(fixtures)]
    if state:
        args += ["--state", str(state)]
    if not read_cache:
        args.append("--no-read-cache")
    return [*args, "--loop", loop]


def prism(port: int, contract: str) -> list[str]:
    # Static examples and no per-request log lines: Prism at its fastest.
    return [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "-v", "warn", str(ROOT / "openapi" / contract)]


def fixtures_with_codes(count: int, directory: Path) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data = copy.deepcopy(data)
    if count:
        data["bulk_codes"] = [{"intercom": BULK_INTERCOM, "count": count, "created_by": 13}]
    path = directory / f"building-{count}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


# -- load with wrk ------------------------------------------------------------------------------------------------

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\\"requests\\":%d,\\"duration_us\\":%d,\\"non2xx\\":%d,\\"socket_errors\\":%d," ..
    "\\"p50_us\\":%d,\\"p99_us\\":%d,\\"p999_us\\":%d,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def wrk_script(method: str, headers: dict[str, str], body: str | None) -> str:
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = [[{value}]]')
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [[{body}]]")
    return "\n".join(lines) + WRK_REPORT


def wrk(url: str, script: str, *, seconds: int, connections: int, threads: int = 1) -> dict[str, Any]:
    return wrk_many([url], script, seconds=seconds, connections=connections, threads=threads)


def wrk_many(urls: list[str], script: str, *, seconds: int, connections: int, threads: int = 1) -> dict[str, Any]:
    """One wrk per URL at once, ``connections`` split between them; answers the summed rate and worst latency.

    ``threads`` is wrk's own: one by default, because on a 2-core machine two wrk threads and a one-worker server
    are three busy threads on two cores, and the scheduler then takes the server off its core for whole time
    slices, which reach its p99. One wrk thread drove 34,000 requests a second against a bare uvicorn app, ten
    times what any server here answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    each = max(1, connections // len(urls))
    try:
        runs = [
            subprocess.Popen(
                ["wrk", f"-t{threads}", f"-c{each}", f"-d{seconds}s", "--timeout", "5s", "-s", handle.name, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for url in urls
        ]
        outputs = [run.communicate(timeout=seconds + 60)[0] for run in runs]
    finally:
        os.unlink(handle.name)
    raws = []
    for out in outputs:
        line = next(line for line in out.splitlines() if line.startswith("BENCH "))
        raws.append(json.loads(line.removeprefix("BENCH ")))
    return {
        "rps": round(sum(raw["requests"] / (raw["duration_us"] / 1e6) for raw in raws), 1),
        "p50_ms": round(max(raw["p50_us"] for raw in raws) / 1000, 2),
        "p99_ms": round(max(raw["p99_us"] for raw in raws) / 1000, 2),
        "p999_ms": round(max(raw["p999_us"] for raw in raws) / 1000, 2),
        "max_ms": round(max(raw["max_us"] for raw in raws) / 1000, 2),
        "requests": sum(raw["requests"] for raw in raws),
        "non_2xx": sum(raw["non2xx"] for raw in raws),
        "socket_errors": sum(raw["socket_errors"] for raw in raws),
    }


def scenarios(future: str) -> list[dict[str, Any]]:
    """Reads first: the write scenario adds codes to the House, which Seam's list would then carry."""
    return [
        {
            "name": "magicline access-code GET",
            "api": "magicline",
            "method": "GET",
            "path": "/v1/customers/1001/access-code",
            "headers": ML_HEADERS,
            "kind": "read",
        },
        {
            "name": "vms codes page=2 (10k codes)",
            "api": "vms",
            "method": "GET",
            "path": "/api/v1/intercom/codes?page=2",
            "headers": VMS_HEADERS,
            "kind": "read",
        },
        {
            "name": "seam access_codes list",
            "api": "seam",
            "method": "GET",
            "path": f"/access_codes?intercom_id={HOUSE_UUID}",
            "headers": SEAM_HEADERS,
            "kind": "read",
        },
        {
            "name": "vms create code POST",
            "api": "vms",
            "method": "POST",
            "path": "/api/v1/intercom/180/codes",
            "headers": VMS_HEADERS,
            "body": json.dumps({"title": "Bench guest", "expired_at": future}),
            "kind": "write",
        },
    ]


def first_answer(base: str, scenario: dict[str, Any]) -> int:
    """The status of one plain request, so that a table of fast errors cannot pass for a fast server."""
    headers = scenario["headers"] | ({"Content-Type": "application/json"} if scenario.get("body") else {})
    url = base + scenario["path"]
    return httpx.request(scenario["method"], url, headers=headers, content=scenario.get("body"), timeout=30).status_code


def summarise(rounds: list[dict[str, Any]], first_status: int) -> dict[str, Any]:
    """Medians over the rounds (a noisy machine disturbs one round, not the median of three), with every round
    kept for the JSON."""
    return {
        "rps": round(statistics.median(r["rps"] for r in rounds), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
        "p999_ms": round(statistics.median(r["p999_ms"] for r in rounds), 2),
        "max_ms": round(max(r["max_ms"] for r in rounds), 2),
        "requests": sum(r["requests"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "first_status": first_status,
        "rounds": rounds,
    }


def ratio_of_rounds(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> float | None:
    """Each round's own ratio of rates, then their median: both numbers of a ratio were taken seconds apart."""
    ratios = [o["rps"] / p["rps"] for o, p in zip(ours, peer, strict=True) if p["rps"]]
    return round(statistics.median(ratios), 2) if ratios else None


def bench_load(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    """Every server is started first and stays up; then, scenario by scenario, they take turns for a few short
    rounds. On a machine whose speed drifts (a shared 2-core VM can halve its speed for seconds at a time), one
    long run per server compares two different machines; rounds taken side by side compare the servers."""
    if shutil.which("wrk") is None:
        report["notes"].append("wrk is missing: load scenarios skipped (Debian/Ubuntu: sudo apt-get install wrk)")
        return
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    fixtures = fixtures_with_codes(10_000, work)
    rows = report["load"] = []
    with contextlib.ExitStack() as servers:
        bases: dict[str, dict[str, str]] = {}
        for who, read_cache, loop in (
            ("ours", True, "asyncio"),
            ("ours_computed", False, "asyncio"),
            ("ours_uvloop", True, "uvloop"),
        ):
            port = free_port()
            command = ours(port, fixtures=fixtures, read_cache=read_cache, loop=loop)
            servers.enter_context(process(command, f"http://127.0.0.1:{port}/seam/health"))
            bases[who] = {api: f"http://127.0.0.1:{port}/{api}" for api in PRISM_READY}
        if prism_available(report):
            bases["prism"] = {}
            for api in PRISM_READY:
                port = free_port()
                servers.enter_context(prism_process(port, api))
                bases["prism"][api] = f"http://127.0.0.1:{port}"
        for scenario in scenarios(future):
            # The read cache plays no part in a write: the second mock only shows what computed reads cost.
            whos = [who for who in bases if not (who == "ours_computed" and scenario["kind"] == "write")]
            script = wrk_script(scenario["method"], scenario["headers"], scenario.get("body"))
            urls = {who: bases[who][scenario["api"]] + scenario["path"] for who in whos}
            firsts = {who: first_answer(bases[who][scenario["api"]], scenario) for who in whos}
            load = functools.partial(wrk, script=script, connections=args.connections, threads=args.wrk_threads)
            for who in whos:
                load(urls[who], seconds=args.warmup)
            rounds: dict[str, list[dict[str, Any]]] = {who: [] for who in whos}
            for number in range(args.rounds):
                turn = whos[number % len(whos) :] + whos[: number % len(whos)]  # nobody always goes first
                for who in turn:
                    rounds[who].append(load(urls[who], seconds=args.duration))
            row: dict[str, Any] = {"scenario": scenario["name"], "kind": scenario["kind"]}
            row |= {who: summarise(rounds[who], firsts[who]) for who in whos}
            if "prism" in row:
                for who, key in (("ours", "ratio"), ("ours_computed", "ratio_computed")):
                    if who in row:
                        row[key] = ratio_of_rounds(rounds[who], rounds["prism"])
            rows.append(row)
            print(
                f"  {scenario['name']}: " + ", ".join(f"{who} {row[who]['rps']} rps" for who in whos),
                flush=True,
            )


def cpu_steadiness(samples: int = 40) -> dict[str, float]:
    """How steady this machine's CPU is: a fixed pure-Python loop, timed again and again (ms). On a quiet machine
    the slowest run is within a few per cent of the fastest; where it is twice as slow, latency percentiles
    measure the machine as much as the server."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        total = 0
        for n in range(200_000):
            total += n
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "min_ms": round(times[0], 2),
        "median_ms": round(statistics.median(times), 2),
        "max_ms": round(times[-1], 2),
    }


# -- in-process -----------------------------------------------------------------------------------------------


async def _asgi_call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    """One request straight into the ASGI app, as a server would hand it over; answers the status."""
    status = 0
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope, headers=list(scope["headers"])), receive, send)
    return status


def _asgi_scope(scenario: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    path, _, query = (f"/{scenario['api']}" + scenario["path"]).partition("?")
    body = scenario.get("body", "").encode()
    headers = [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in scenario["headers"].items()]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": scenario["method"],
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, body


def bench_inprocess(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    """The load scenarios with no server and no load generator: the app's own cost, microseconds per request
    (best of five rounds, which filters out a noisy machine better than the mean)."""
    import asyncio
    import warnings

    # Connexion imports Starlette's test client, which warns about httpx; `mockserver run` hides it the same way.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from mockserver.app import create_app
    from mockserver.runtime import Settings

    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    fixtures = fixtures_with_codes(10_000, work)
    rows = report["inprocess"] = []
    requests = 2_000 if args.quick else 5_000

    async def measure(app: Any, scenario: dict[str, Any]) -> float:
        scope, body = _asgi_scope(scenario)
        status = await _asgi_call(app, scope, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{scenario['name']}: in-process answer {status}")
        for _ in range(200):
            await _asgi_call(app, scope, body)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(requests // 5):
                await _asgi_call(app, scope, body)
            best = min(best, (time.perf_counter() - started) / (requests // 5))
        return round(best * 1e6, 1)

    for read_cache in (True, False):
        limits = Settings(
            magicline_rate_limit_per_minute=int(RAISED_LIMIT), vms_wsurl_limit_per_5_minutes=int(RAISED_LIMIT)
        )
        app = create_app(fixtures=fixtures, seed=0, settings=limits, read_cache=read_cache)
        for scenario in scenarios(future):
            if scenario["kind"] == "write" and not read_cache:
                continue  # a write never uses the read cache
            us = asyncio.run(measure(app, scenario))
            rows.append({"scenario": scenario["name"], "read_cache": read_cache, "us_per_request": us})
            print(f"  in-process{'' if read_cache else ', read cache off'}  {scenario['name']}: {us} µs", flush=True)


# -- instructions ----------------------------------------------------------------------------------------------


def _callgrind_total(dump: Path) -> int:
    """The instruction count a callgrind dump file records."""
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction count in {dump}")


def _send(client: httpx.Client, port: int, scenario: dict[str, Any]) -> None:
    headers = dict(scenario["headers"])
    if scenario.get("body"):
        headers["Content-Type"] = "application/json"
    url = f"http://127.0.0.1:{port}/{scenario['api']}{scenario['path']}"
    answer = client.request(scenario["method"], url, headers=headers, content=scenario.get("body"))
    if not answer.is_success:
        raise RuntimeError(f"{scenario['name']}: {answer.status_code} {answer.text[:300]}")


def _dump_of(work: Path, port: int, trigger: str) -> Path:
    """The dump file callgrind wrote when asked to dump with ``trigger``."""
    for dump in work.glob(f"callgrind-{port}*"):
        with dump.open(errors="replace") as lines:
            if any(line.rstrip() == f"desc: Trigger: dump {trigger}" for line in itertools.islice(lines, 30)):
                return dump
    raise RuntimeError(f"callgrind wrote no dump for {trigger}")


def instructions_per_request(
    tree: Path, scenarios_: list[dict[str, Any]], *, fixtures: Path, read_cache: bool, requests: int, work: Path
) -> dict[str, int]:
    """Start the mock of ``tree`` under callgrind; for each scenario, warm up, zero the counters, send ``requests``
    requests one after another on one keep-alive connection and dump the counters: what the server process
    executed per request, parsing HTTP and sending the answer included."""
    port = free_port()
    out = work / f"callgrind-{port}"
    command = ours(port, fixtures=fixtures, read_cache=read_cache)
    # A fixed hash seed: str hashing decides dict and set layouts, and with them a few instructions per request.
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
    counts: dict[str, int] = {}
    # Valgrind runs the start-up some 50 times slower: asked once a second, not a hundred times.
    ready = f"http://127.0.0.1:{port}/seam/health"
    with process(args, ready, cwd=tree, env=env, poll_s=1) as (proc, _), httpx.Client(timeout=120) as client:
        for number, scenario in enumerate(scenarios_):
            for _ in range(50):
                _send(client, port, scenario)
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
            for _ in range(requests):
                _send(client, port, scenario)
            trigger = f"scenario-{number}"
            subprocess.run(["callgrind_control", f"--dump={trigger}", str(proc.pid)], check=True, capture_output=True)
            counts[scenario["name"]] = round(_callgrind_total(_dump_of(work, port, trigger)) / requests)
    return counts


def bench_instructions(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    """The load scenarios' cost as the server's instructions per request: a count, which the machine's other load
    hardly moves (bench/README.md), where a wrk rate on a shared 2-core VM moves by a third between runs. With
    ``--against REF``, the same for the commit REF (checked out in a temporary worktree), and the ratio of the two."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        report["notes"].append(
            "valgrind is missing: instruction counts skipped (Debian/Ubuntu: apt-get install valgrind)"
        )
        return
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    # Reads first: the writes add codes to the building the reads list.
    chosen = sorted(scenarios(future), key=lambda scenario: scenario["kind"] == "write")
    fixtures = fixtures_with_codes(args.instruction_codes, work)
    trees = {"this tree": ROOT}
    with contextlib.ExitStack() as stack:
        if args.against:
            ref_tree = work / "against"
            subprocess.run(
                ["git", "worktree", "add", "--detach", "--quiet", str(ref_tree), args.against], cwd=ROOT, check=True
            )
            stack.callback(
                subprocess.run, ["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT, check=False
            )
            trees[args.against] = ref_tree
        runs = [(name, tree, read_cache) for read_cache in (True, False) for name, tree in trees.items()]

        # Two at a time, the trees side by side: a count includes the event loop's timed work (uvicorn's tick,
        # ten a second), which grows with the wall time a run takes, so both trees should share the machine's load.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                run: pool.submit(
                    instructions_per_request,
                    run[1],
                    [scenario for scenario in chosen if run[2] or scenario["kind"] != "write"],
                    fixtures=fixtures,
                    read_cache=run[2],
                    requests=args.instruction_requests,
                    work=work,
                )
                for run in runs
            }
            counts = {run: future.result() for run, future in futures.items()}
    rows = report["instructions"] = []
    for scenario in chosen:
        for read_cache in (True, False):
            if scenario["kind"] == "write" and not read_cache:
                continue
            row: dict[str, Any] = {"scenario": scenario["name"], "read_cache": read_cache}
            for name in trees:
                row[name] = counts[(name, trees[name], read_cache)][scenario["name"]]
            if args.against:
                row["ratio"] = round(row["this tree"] / row[args.against], 3)
            rows.append(row)
    report["instructions_meta"] = {
        "codes": args.instruction_codes,
        "requests": args.instruction_requests,
        "against": args.against,
    }


# Prism answers 404 or 401 on most bare URLs; each contract has one operation that is open and answers 200.
PRISM_READY = {
    "magicline": ("/v1/customers", {"X-API-KEY": "x"}),
    "seam": ("/health", {}),
    "vms": ("/api/v1/wsurl", {"X-Client": "web", "X-UUID": "bench"}),
}


@contextlib.contextmanager
def prism_process(port: int, api: str) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    path, headers = PRISM_READY[api]
    with process(prism(port, f"{api}.yaml"), f"http://127.0.0.1:{port}{path}", timeout=120, headers=headers) as p:
        yield p


def prism_available(report: dict[str, Any]) -> bool:
    if PRISM.exists():
        return True
    if shutil.which("npm") is None:
        report["notes"].append("Node.js/npm are missing: Prism not benched, ours alone")
        return False
    print("installing Prism into bench/node_modules (npm ci) ...", flush=True)
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, capture_output=True, text=True)
    if done.returncode != 0 or not PRISM.exists():
        report["notes"].append(f"Prism could not be installed ({done.stderr.strip()[-300:]}): ours alone")
        return False
    return True


# -- start-up ------------------------------------------------------------------------------------------------------


def bench_startup(args: argparse.Namespace, report: dict[str, Any]) -> None:
    trials = 3
    times = []
    for _ in range(trials):
        port = free_port()
        with process(ours(port), f"http://127.0.0.1:{port}/seam/health") as (_, seconds):
            times.append(seconds)
    report["startup"] = {"ours_s": round(statistics.median(times), 3)}
    if prism_available(report):
        times = []
        for _ in range(trials):
            port = free_port()
            with prism_process(port, "seam") as (_, seconds):
                times.append(seconds)
        report["startup"]["prism_s"] = round(statistics.median(times), 3)
    print(f"  start-up: {report['startup']}", flush=True)


# -- list latency as the building grows ----------------------------------------------------------------------------


def latency(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(20):
        client.get(path).raise_for_status()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    samples.sort()
    return {
        "p50_ms": round(samples[len(samples) // 2], 2),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
    }


def sqlite_state(count: int, work: Path) -> Path:
    """A state file holding ``count`` codes, built once and cached (a 1,000,000-code file takes minutes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"state-{count}.db"
    if not cached.exists():
        print(f"  building a SQLite state with {count:,} codes (cached in {cached}) ...", flush=True)
        building = work / "building.db"
        port = free_port()
        with process(
            ours(port, fixtures=fixtures_with_codes(count, work), state=building),
            f"http://127.0.0.1:{port}/seam/health",
        ):
            pass
        # Whatever is still in the write-ahead log belongs in the file before the file alone is kept.
        with contextlib.closing(sqlite3.connect(building)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.move(building, cached)
    copy_path = work / f"state-{count}.db"
    shutil.copy(cached, copy_path)
    return copy_path


def bench_sizes(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    rows = report["sizes"] = []
    for backend in ("memory", "sqlite"):
        for count in args.sizes:
            port = free_port()
            # The same page is asked again and again: only with the read cache off is each one listed anew.
            if backend == "memory":
                server = ours(port, fixtures=fixtures_with_codes(count, work), read_cache=False)
            else:
                server = ours(port, state=sqlite_state(count, work), read_cache=False)
            with process(server, f"http://127.0.0.1:{port}/seam/health") as (proc, ready_s):
                pages = max(1, -(-count // 25))
                with httpx.Client(base_url=f"http://127.0.0.1:{port}/vms", headers=VMS_HEADERS) as client:
                    row = {
                        "backend": backend,
                        "codes": count,
                        "ready_s": round(ready_s, 1),
                        "page2": latency(client, "/api/v1/intercom/codes?page=2", args.samples),
                        "middle_page": latency(
                            client, f"/api/v1/intercom/codes?page={max(1, pages // 2)}", args.samples
                        ),
                        "rss_mb": rss_mb(proc.pid),
                    }
            rows.append(row)
            print(f"  {backend} {count:>9,} codes: page 2 p50 {row['page2']['p50_ms']} ms", flush=True)
    for backend in ("memory", "sqlite"):
        mine = [row for row in rows if row["backend"] == backend]
        if len(mine) > 1:
            report.setdefault("growth", {})[backend] = round(
                mine[-1]["page2"]["p50_ms"] / mine[0]["page2"]["p50_ms"], 2
            )


# -- several replicas on one Redis building --------------------------------------------------------------------

REDIS_URL = os.environ.get("DOORCODES_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def bench_replicas(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    if shutil.which("wrk") is None:
        report["notes"].append("wrk is missing: the replica scenarios were skipped")
        return
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        report["notes"].append(f"no Redis server at {REDIS_URL}: the replica scenarios were skipped")
        return
    namespace = f"bench-{os.getpid()}-{int(time.time())}"
    state = f"{REDIS_URL}?namespace={namespace}"
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    rows = report["replicas"] = []
    wanted = [s for s in scenarios(future) if s["api"] in ("magicline", "vms")]
    try:
        fixtures = fixtures_with_codes(10_000, work)
        with contextlib.ExitStack() as stack:
            ports = []
            for _ in range(2):  # the first fills the building, the second joins it
                port = free_port()
                stack.enter_context(
                    process(ours(port, fixtures=fixtures, state=state), f"http://127.0.0.1:{port}/seam/health")
                )
                ports.append(port)
            # The same building in memory, measured in the same minute: the yardstick of the replica figures.
            memory_port = free_port()
            stack.enter_context(
                process(ours(memory_port, fixtures=fixtures), f"http://127.0.0.1:{memory_port}/seam/health")
            )
            bases = {"memory": [memory_port], "replicas_1": ports[:1], "replicas_2": ports}
            for scenario in wanted:
                script = wrk_script(scenario["method"], scenario["headers"], scenario.get("body"))
                urls = {
                    who: [f"http://127.0.0.1:{port}/{scenario['api']}{scenario['path']}" for port in where]
                    for who, where in bases.items()
                }
                load = functools.partial(
                    wrk_many, script=script, connections=args.connections, threads=args.wrk_threads
                )
                for who in bases:
                    load(urls[who], seconds=args.warmup)
                # Taking turns, as in the load part: this machine's speed changes from one second to the next.
                rounds: dict[str, list[dict[str, Any]]] = {who: [] for who in bases}
                whos = list(bases)
                for number in range(args.rounds):
                    for who in whos[number % len(whos) :] + whos[: number % len(whos)]:
                        rounds[who].append(load(urls[who], seconds=args.duration))
                row: dict[str, Any] = {"scenario": scenario["name"]}
                row |= {who: summarise(rounds[who], 0) for who in bases}
                row["ratio_1"] = ratio_of_rounds(rounds["replicas_1"], rounds["memory"])
                rows.append(row)
                print(
                    f"  redis {scenario['name']}: memory {row['memory']['rps']}, replicas "
                    f"{row['replicas_1']['rps']} / {row['replicas_2']['rps']} rps",
                    flush=True,
                )
    finally:
        from mockserver.store.redis_store import RedisStore

        store = RedisStore(REDIS_URL, namespace=namespace)
        store.clear()
        store.close()


# -- a full conformance run ----------------------------------------------------------------------------------------


CONFORMANCE = """
[[target]]
api = "vms"
base_url = "{base}/vms"
login = "alice@demo.test"
password = "alice-password"
other_login = "bob@demo.test"
other_password = "bob-password"
intercom_id = 180

[[target]]
api = "seam"
base_url = "{base}/seam"
token = "demo-seam-alice"
other_token = "demo-seam-bob"

[[target]]
api = "magicline"
base_url = "{base}/magicline"
api_key = "demo-magicline-mission"
other_api_key = "demo-magicline-harbour"
limited_api_key = "demo-magicline-mission-readonly"
customer_id = 1003
"""


def bench_conformance(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = work / "conformance.toml"
    config.write_text(CONFORMANCE.format(base=base))
    with process(ours(port), f"{base}/seam/health"):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "conformance", "run", "--config", str(config), "--no-progress"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    report["conformance"] = {"wall_s": round(seconds, 1), "exit_code": done.returncode}
    if done.returncode != 0:
        report["notes"].append("the conformance run did not pass: " + done.stdout[-500:])
    print(f"  conformance: {report['conformance']}", flush=True)


# -- the table -----------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _variant_table(
    rows: list[dict[str, Any]], who: str, title: str, extra: dict[str, Callable[[dict, dict], Any]]
) -> list[str]:
    """The rows one of our other mocks ran: rate, p50 and p99, then the ``extra`` columns."""
    ran = [row for row in rows if who in row]
    if not ran:
        return []
    lines = ["", title, f"{'scenario':32} {'ours rps':>9} {'p50':>7} {'p99':>7} " + " ".join(f"{h:>7}" for h in extra)]
    for row in ran:
        o = row[who]
        cells = " ".join(f"{column(row, o)!s:>7}" for column in extra.values())
        lines.append(f"{row['scenario']:32} {o['rps']:>9} {o['p50_ms']:>7} {o['p99_ms']:>7} {cells}")
    return lines


def table(report: dict[str, Any]) -> str:
    out = [f"doorcodes bench · {report['when']} · {report['machine']} · commit {report['commit']}"]
    steady = report["cpu_steadiness"]
    out.append(
        f"CPU steadiness: a fixed loop took {steady['min_ms']} to {steady['max_ms']} ms (median {steady['median_ms']});"
        " far apart, and percentiles measure the machine too"
    )
    out.append("")
    if report.get("load"):
        out.append(
            f"Load: wrk, {report['connections']} connections, {report['wrk_threads']} wrk thread(s); "
            f"servers take turns, {report['rounds']} rounds of {report['duration_s']} s after a "
            f"{report['warmup_s']} s warm-up; medians of the rounds; "
            "rate limits raised; request validation and auth on"
        )
        out.append(
            f"{'scenario':32} {'ours rps':>9} {'p50':>7} {'p99':>7} {'p99.9':>7} "
            f"{'prism rps':>10} {'p50':>7} {'p99':>7} {'p99.9':>7} {'ratio':>6}"
        )
        for row in report["load"]:
            o, p = row["ours"], row.get("prism")
            prism_cols = f"{'-':>10}"
            if p:
                prism_cols = (
                    f"{p['rps']:>10} {p['p50_ms']:>7} {p['p99_ms']:>7} {p['p999_ms']:>7} {_cell(row.get('ratio')):>6}"
                )
            out.append(
                f"{row['scenario']:32} {o['rps']:>9} {o['p50_ms']:>7} {o['p99_ms']:>7} {o['p999_ms']:>7} {prism_cols}"
            )
            for who in ("ours", "ours_computed", "ours_uvloop", "prism"):
                if row.get(who) and (
                    row[who]["non_2xx"] or row[who]["socket_errors"] or row[who]["first_status"] >= 300
                ):
                    out.append(
                        f"  ! {who}: first answer {row[who]['first_status']}, non-2xx {row[who]['non_2xx']}, "
                        f"socket errors {row[who]['socket_errors']}"
                    )
        out += _variant_table(
            report["load"],
            "ours_computed",
            "The same reads with --no-read-cache (every answer computed)",
            {"ratio": lambda row, _: _cell(row.get("ratio_computed"))},
        )
        out += _variant_table(
            report["load"],
            "ours_uvloop",
            "The same load on a mock started with --loop uvloop (max: the slowest answer of all rounds)",
            {"p99.9": lambda _, o: o["p999_ms"], "max": lambda _, o: o["max_ms"]},
        )
        out.append("")
    if report.get("inprocess"):
        out.append("The same scenarios in-process: the ASGI app called directly, no server (µs per request, best of 5)")
        out.append(f"{'scenario':32} {'read cache on':>14} {'off':>7}")
        by_name: dict[str, dict[bool, float]] = {}
        for row in report["inprocess"]:
            by_name.setdefault(row["scenario"], {})[row["read_cache"]] = row["us_per_request"]
        for name, cells in by_name.items():
            out.append(f"{name:32} {cells.get(True, '-'):>14} {cells.get(False, '-'):>7}")
        out.append("")
    if report.get("instructions"):
        meta = report["instructions_meta"]
        against = meta["against"]
        out.append(
            "Server instructions per request (callgrind; HTTP parsing and sending included; "
            f"{meta['codes']:,} codes, {meta['requests']} requests on one connection per scenario)"
        )
        header = f"{'scenario':32} {'read cache':>10} {'this tree':>10}"
        if against:
            header += f" {against[:10]:>10} {'ratio':>6}"
        out.append(header)
        for row in report["instructions"]:
            line = f"{row['scenario']:32} {'on' if row['read_cache'] else 'off':>10} {row['this tree']:>10,}"
            if against:
                line += f" {row[against]:>10,} {row['ratio']:>6}"
            out.append(line)
        out.append("")
    if report.get("startup"):
        s = report["startup"]
        out.append(
            f"Start-up to first answer: ours {s['ours_s']} s" + (f", prism {s['prism_s']} s" if "prism_s" in s else "")
        )
        out.append("")
    if report.get("sizes"):
        out.append("VMS list latency as the building grows (sequential requests, read cache off, ms)")
        out.append(
            f"{'backend':8} {'codes':>10} {'page2 p50':>10} {'p99':>7} {'middle p50':>11} {'p99':>7} "
            f"{'RSS MB':>8} {'ready s':>8}"
        )
        for row in report["sizes"]:
            rss = f"{row['rss_mb']:.0f}" if row["rss_mb"] else "-"
            out.append(
                f"{row['backend']:8} {row['codes']:>10,} {row['page2']['p50_ms']:>10} {row['page2']['p99_ms']:>7} "
                f"{row['middle_page']['p50_ms']:>11} {row['middle_page']['p99_ms']:>7} {rss:>8} {row['ready_s']:>8}"
            )
        for backend, growth in report.get("growth", {}).items():
            out.append(f"  {backend}: largest/smallest page-2 p50 = {growth}x")
        out.append("")
    if report.get("replicas"):
        out.append("Redis state, one and two replicas (wrk per replica, connections split; same load as above),")
        out.append("beside the same building in memory; ratio = one replica / memory")
        out.append(
            f"{'scenario':32} {'memory rps':>11} {'p99':>7} {'1 replica rps':>14} {'p99':>7} {'ratio':>6}"
            f" {'2 replicas rps':>15} {'p99':>7}"
        )
        for row in report["replicas"]:
            mem, one, two = row["memory"], row["replicas_1"], row["replicas_2"]
            out.append(
                f"{row['scenario']:32} {mem['rps']:>11} {mem['p99_ms']:>7} {one['rps']:>14} {one['p99_ms']:>7}"
                f" {row['ratio_1']:>6} {two['rps']:>15} {two['p99_ms']:>7}"
            )
            if mem["non_2xx"] or one["non_2xx"] or two["non_2xx"]:
                out.append(f"  ! non-2xx answers: {mem['non_2xx']} / {one['non_2xx']} / {two['non_2xx']}")
        out.append("")
    if report.get("conformance"):
        c = report["conformance"]
        out.append(f"Full conformance run, three APIs, defaults: {c['wall_s']} s (exit {c['exit_code']})")
    for note in report["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        action="append",
        choices=["load", "inprocess", "instructions", "startup", "sizes", "replicas", "conformance"],
    )
    parser.add_argument("--quick", action="store_true", help="one 5 s load round, sizes up to 10,000")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured load round")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds per server and scenario (taking turns)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk's threads per server (one leaves the other core to the server)"
    )
    parser.add_argument("--samples", type=int, default=300, help="sequential requests per list-latency point")
    parser.add_argument(
        "--sizes", type=lambda text: [int(n) for n in text.split(",")], default=[100, 10_000, 1_000_000]
    )
    parser.add_argument(
        "--against", metavar="REF", help="instructions: also count those of this git commit, and the ratio"
    )
    parser.add_argument("--instruction-requests", type=int, default=2000, help="instructions: requests per scenario")
    parser.add_argument("--instruction-codes", type=int, default=10_000, help="instructions: codes in the building")
    parser.add_argument("--out", type=Path, help="JSON file (default: bench/results/<time>.json)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.samples, args.rounds = 5, 2, 100, 1
        args.sizes = [n for n in args.sizes if n <= 10_000]
        args.instruction_requests = min(args.instruction_requests, 500)
    parts = args.only or ["load", "inprocess", "instructions", "startup", "sizes", "replicas", "conformance"]
    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "connections": args.connections,
        "wrk_threads": args.wrk_threads,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "cpu_steadiness": cpu_steadiness(),
        "warmup_s": args.warmup,
        "notes": [],
    }
    with tempfile.TemporaryDirectory(prefix="doorcodes-bench-") as tmp:
        work = Path(tmp)
        for part in parts:
            print(f"{part} ...", flush=True)
            {
                "load": bench_load,
                "inprocess": bench_inprocess,
                "instructions": bench_instructions,
                "startup": lambda a, w, r: bench_startup(a, r),
                "sizes": bench_sizes,
                "replicas": bench_replicas,
                "conformance": bench_conformance,
            }[part](args, work, report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"{report['when'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2))
    print()
    print(table(report))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
