"""Memory of `mockserver run` while one client pipelines requests and never reads the answers, and after it leaves.

    python bench/pipelining.py                    # 150,000 requests at most
    python bench/pipelining.py --loop uvloop      # options after the first are passed to `mockserver run`

The client pipelines `GET /vms/api/v1/intercom/codes?per_page=100` in batches of 100 for up to two minutes, with
its socket buffers left at the system's defaults, and stops when the mock has read nothing of it for 10 s.
Printed: the server's resident memory (VmRSS) idle, while the client is connected, and 5 s after it leaves.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

REQUEST = (
    b"GET /vms/api/v1/intercom/codes?per_page=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Authorization: Bearer demo-vms-alice\r\nX-Client: web\r\nX-UUID: pipeliner\r\n\r\n"
)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150_000)
    args, server_args = parser.parse_known_args()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "run", "--port", str(port), "--seed", "0", *server_args],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the mock did not start") from None
                time.sleep(0.1)
        time.sleep(0.5)
        idle = _rss_mb(server.pid)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(2.0)
        batch = REQUEST * 100
        sent, stalls, peak = 0, 0, idle
        started = time.monotonic()
        while sent < args.requests and time.monotonic() - started < 120 and stalls < 5:
            try:
                sock.sendall(batch)
                sent, stalls = sent + 100, 0
            except TimeoutError:
                stalls += 1  # the mock reads nothing more from this client
            peak = max(peak, _rss_mb(server.pid))
        elapsed = time.monotonic() - started
        time.sleep(2)
        connected = _rss_mb(server.pid)
        sock.close()
        time.sleep(5)
        after = _rss_mb(server.pid)
        print(
            f"requests written by the client: {sent:,} in {elapsed:.1f} s"
            + (" (then the mock read no more)" if stalls else "")
        )
        print(
            f"mock's memory: idle {idle:.0f} MB, connected {connected:.0f} MB (peak {max(peak, connected):.0f} MB), "
            f"5 s after the client left {after:.0f} MB"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
