"""What `conformance proxy` adds to an exchange: the same requests sent straight to a mock and through the proxy
(one client, one request at a time, as an app's calls mostly are), rounds alternating; prints p50 and p90 of each
and what the proxy adds.

    python bench/proxy.py [--requests 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import httpx

from conformance.proxy_run import start_proxy

VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "bench"}


def timings(base: str, count: int) -> list[float]:
    """Milliseconds per exchange: alternately a code list and a code creation (its body judged too)."""
    found = []
    with httpx.Client(base_url=base) as client:
        for number in range(count):
            started = time.perf_counter()
            if number % 2:
                client.post(
                    "/api/v1/intercom/181/codes", headers=VMS, json={"title": "bench", "expired_at": "2031-01-01 10:00"}
                )
            else:
                client.get("/api/v1/intercom/codes", headers=VMS, params={"per_page": 10})
            found.append((time.perf_counter() - started) * 1000)
    return found


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The mock in a process of its own, as an upstream is: the proxy and the client share this one.
    mock = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver",
            "run",
            "--port",
            "18765",
            "--frozen-clock",
            "--clock",
            "2030-01-01T00:00:00Z",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream = "http://127.0.0.1:18765/vms"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(upstream + "/api/v1/wsurl", headers=VMS)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the mock did not start") from None
                time.sleep(0.1)
        direct: list[float] = []
        proxied: list[float] = []
        with start_proxy("vms", upstream) as proxy:
            timings(proxy.base_url, 50)  # warm both paths up
            timings(upstream, 50)
            for _ in range(args.rounds):
                direct += timings(upstream, args.requests)
                proxied += timings(proxy.base_url, args.requests)
    finally:
        mock.terminate()
        mock.wait(10)
    print(f"{len(direct)} exchanges each way ({args.rounds} rounds, alternating list and create)")
    print(f"direct   p50 {quantile(direct, 0.5):.2f} ms  p90 {quantile(direct, 0.9):.2f} ms")
    print(f"proxied  p50 {quantile(proxied, 0.5):.2f} ms  p90 {quantile(proxied, 0.9):.2f} ms")
    print(f"the proxy adds p50 {quantile(proxied, 0.5) - quantile(direct, 0.5):.2f} ms per exchange")


if __name__ == "__main__":
    main()
