"""Conformance suite: checks a vendor server (Magicline, Seam-compatible intercom cloud, AIPIX VMS) against the
project's contracts and the vendors' documented behaviour.

    from conformance import Credentials, Options, Summary, Target, run

    target = Target(api="vms", base_url="https://vms.example.com",
                    credentials=Credentials(login="demo", password="secret"), intercom_id=180)
    summary = Summary().consume(run(target, Options(seed=0)))
    print(summary.render()); raise SystemExit(summary.exit_code)
"""

from .engine import fuzz, run
from .events import Finding
from .reports import Summary, write_junit
from .target import Credentials, Options, Target, load_config

__all__ = ["Credentials", "Finding", "Options", "Summary", "Target", "fuzz", "load_config", "run", "write_junit"]
