"""The benchmark's arithmetic and table: what a reader of `bench/run.py`'s output relies on."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def wrk_round(
    rps: float, p50: float = 5.0, p99: float = 20.0, non_2xx: int = 0, p999: float = 30.0, slowest: float = 40.0
) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "p999_ms": p999,
        "max_ms": slowest,
        "requests": int(rps * 5),
        "non_2xx": non_2xx,
        "socket_errors": 0,
    }


def test_summary_takes_medians_of_rounds_and_sums_counts(bench: Any) -> None:
    rounds = [
        wrk_round(1000, 4, 30, non_2xx=2, p999=50, slowest=70),
        wrk_round(3000, 6, 90, p999=120, slowest=150),
        wrk_round(2000, 5, 10, p999=15, slowest=20),
    ]
    summary = bench.summarise(rounds, first_status=201)
    assert (summary["rps"], summary["p50_ms"], summary["p99_ms"]) == (2000, 5, 30)
    # p99.9 is a median like the others; the slowest answer is the slowest of all rounds.
    assert (summary["p999_ms"], summary["max_ms"]) == (50, 150)
    assert summary["requests"] == 30_000
    assert summary["non_2xx"] == 2
    assert summary["first_status"] == 201
    assert summary["rounds"] == rounds


def test_ratio_pairs_rounds_taken_side_by_side(bench: Any) -> None:
    # The machine halved its speed in round 2 and stalled in round 3: per round the ratios are 2, 2 and 1, so the
    # answer is 2; the ratio of the two medians (3000 / 2000) would mix rounds taken at different speeds.
    ours = [wrk_round(4000), wrk_round(2000), wrk_round(3000)]
    prism = [wrk_round(2000), wrk_round(1000), wrk_round(3000)]
    assert bench.ratio_of_rounds(ours, prism) == 2.0
    # A peer that served nothing in a round gives no ratio for that round, and none at all if it never did.
    assert bench.ratio_of_rounds([wrk_round(10), wrk_round(30)], [wrk_round(0), wrk_round(10)]) == 3.0
    assert bench.ratio_of_rounds([wrk_round(10)], [wrk_round(0)]) is None


def test_table_shows_medians_ratios_and_flags_failed_answers(bench: Any) -> None:
    ours = bench.summarise([wrk_round(8000, 3.5, 19.5, p999=25.0)], 200)
    on_uvloop = bench.summarise([wrk_round(8500, 3.4, 6.0, p999=41.5, slowest=152.3)], 200)
    computed = bench.summarise([wrk_round(2000, 15.0, 40.0)], 200)
    prism = bench.summarise([wrk_round(0, 0, 0, non_2xx=7)], 404)
    report = {
        "when": "2026-11-30T00:00:00Z",
        "machine": "x86_64, 2 cores",
        "commit": "abc1234",
        "cpu_steadiness": {"min_ms": 10.0, "median_ms": 11.0, "max_ms": 21.0},
        "connections": 32,
        "wrk_threads": 1,
        "rounds": 1,
        "duration_s": 5,
        "warmup_s": 3,
        "notes": ["wrk is here"],
        "load": [
            {
                "scenario": "vms list",
                "kind": "read",
                "ours": ours,
                "ours_computed": computed,
                "ours_uvloop": on_uvloop,
                "prism": prism,
                "ratio": None,
                "ratio_computed": None,
            },
            {"scenario": "vms create", "kind": "write", "ours": ours},
        ],
    }
    text = bench.table(report)
    assert "a fixed loop took 10.0 to 21.0 ms" in text
    assert "32 connections, 1 wrk thread(s)" in text
    assert "1 rounds of 5 s after a 3 s warm-up" in text
    list_line = next(line for line in text.splitlines() if line.startswith("vms list"))
    assert list_line.split()[2:6] == ["8000", "3.5", "19.5", "25.0"] and list_line.split()[-1] == "-"
    uvloop_at = text.splitlines().index(next(line for line in text.splitlines() if "--loop uvloop" in line))
    assert text.splitlines()[uvloop_at + 2].split()[2:] == ["8500", "3.4", "6.0", "41.5", "152.3"]
    assert "! prism: first answer 404, non-2xx 7" in text
    assert "note: wrk is here" in text


@pytest.mark.skipif(shutil.which("callgrind_control") is None, reason="valgrind is not installed")
def test_instruction_counts_come_from_the_dump_callgrind_wrote_for_the_trigger(bench: Any, tmp_path: Path) -> None:
    # A real callgrind run of a small program with two dumps asked for by name, as the bench asks for them.
    program = "import sys, time\nsys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(30)"
    out = tmp_path / "callgrind-1234"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        for trigger in ("scenario-1", "scenario-10"):
            subprocess.run(["callgrind_control", f"--dump={trigger}", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.kill()
        proc.wait()
    first, tenth = bench._dump_of(tmp_path, 1234, "scenario-1"), bench._dump_of(tmp_path, 1234, "scenario-10")
    assert first != tenth  # "scenario-1" is not taken for the start of "scenario-10"
    # The first dump holds Python's start-up (millions of instructions); the second, a sleeping process's few.
    assert bench._callgrind_total(first) > 1_000_000 > bench._callgrind_total(tenth)
    with pytest.raises(RuntimeError, match="no dump for scenario-2"):
        bench._dump_of(tmp_path, 1234, "scenario-2")


def test_instruction_table_shows_counts_and_the_ratio_to_the_other_commit(bench: Any) -> None:
    report = {
        "when": "2026-12-02T00:00:00Z",
        "machine": "x86_64, 2 cores",
        "commit": "abc1234",
        "cpu_steadiness": {"min_ms": 10.0, "median_ms": 11.0, "max_ms": 21.0},
        "notes": [],
        "instructions": [
            {"scenario": "magicline GET", "read_cache": True, "this tree": 426_474, "67744da": 437_880, "ratio": 0.974},
            {
                "scenario": "magicline GET",
                "read_cache": False,
                "this tree": 576_545,
                "67744da": 607_665,
                "ratio": 0.949,
            },
        ],
        "instructions_meta": {"codes": 10_000, "requests": 2000, "against": "67744da"},
    }
    lines = bench.table(report).splitlines()
    assert any("10,000 codes, 2000 requests" in line for line in lines)
    assert next(line for line in lines if line.startswith("magicline GET") and " on " in line).split()[-4:] == [
        "on",
        "426,474",
        "437,880",
        "0.974",
    ]
    assert next(line for line in lines if " off " in line).split()[-1] == "0.949"
