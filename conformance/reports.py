"""Consumers of a run's events: the summary (and the exit code), JUnit XML, curl reproductions and the fuzz
findings directory.

Every text that leaves here passes the `Redactor` once more, on top of the engine's own redaction, so a
credential cannot reach a report even through a message a server echoed back.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .events import Event, Finding, Note, Outcome, RequestView, RunFinished, RunStarted
from .redact import Redactor

__all__ = ["FindingStore", "Summary", "curl", "write_junit"]

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
#: differences from mock choices listed in the text summary (the JUnit report has them all)
MAX_DIFFERENCES_SHOWN = 20
# Headers a reproduction does not need.
_NOISE = frozenset(
    {"content-length", "host", "accept-encoding", "connection", "user-agent", "x-schemathesis-testcaseid"}
)


def curl(request: RequestView, redactor: Redactor | None = None) -> str:
    """A shell command that sends the same request (credentials masked)."""
    redactor = redactor or Redactor()
    parts = ["curl", "-X", request.method]
    for name, value in request.headers:
        if name.lower() not in _NOISE:
            parts += ["-H", shlex.quote(f"{name}: {redactor.header(name, value)}")]
    if request.body:
        parts += ["-d", shlex.quote(redactor.text(request.body))]
    parts.append(shlex.quote(redactor.text(request.url)))
    return " ".join(parts)


@dataclass
class TargetResult:
    name: str
    api: str = ""
    base_url: str = ""
    seed: int | None = None
    mode: str = "run"
    seconds: float = 0.0
    error: str | None = None
    finished: bool = False
    findings: dict[tuple[str, str, str, str], list[Finding]] = field(default_factory=dict)
    passed: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[str]:
        return sorted({key[1] for key in self.findings})

    @property
    def status(self) -> str:
        if self.error is not None or not self.finished:
            return "error"
        if self.findings:
            return "failed"
        return "error" if self.errors else "passed"


class Summary:
    """Collects events into a verdict per target."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()
        self.targets: dict[str, TargetResult] = {}

    def _target(self, name: str) -> TargetResult:
        return self.targets.setdefault(name, TargetResult(name))

    def handle(self, event: Event) -> None:
        result = self._target(event.target)
        if isinstance(event, RunStarted):
            result.api, result.base_url, result.seed, result.mode = event.api, event.base_url, event.seed, event.mode
        elif isinstance(event, Outcome):
            self._outcome(result, event)
        elif isinstance(event, Note):
            result.notes.append(event)
        elif isinstance(event, RunFinished):
            result.finished, result.seconds, result.error = True, event.seconds, event.error

    def _outcome(self, result: TargetResult, event: Outcome) -> None:
        if event.status == "passed":
            key = (event.check, event.operation)
            result.passed[key] = result.passed.get(key, 0) + event.passed
        elif event.status == "failed" and event.finding is not None:
            result.findings.setdefault(event.finding.key, []).append(event.finding)
        elif event.status == "skipped":
            result.skipped[event.check] = event.note
        elif event.status == "error":
            result.errors.append((event.check, event.operation, event.note))

    def consume(self, events: Iterable[Event]) -> Summary:
        for event in events:
            self.handle(event)
        return self

    @property
    def exit_code(self) -> int:
        statuses = [result.status for result in self.targets.values()]
        if not statuses or any(r.error is not None or not r.finished for r in self.targets.values()):
            return EXIT_ERROR
        if "failed" in statuses:
            return EXIT_FAILED
        return EXIT_ERROR if "error" in statuses else EXIT_OK

    def findings(self) -> list[Finding]:
        return [group[0] for result in self.targets.values() for group in result.findings.values()]

    # -------------------------------------------------------------- text

    def render(self) -> str:
        return self.redactor.text(
            "\n".join(line for result in self.targets.values() for line in self._render_target(result))
        )

    def _render_target(self, result: TargetResult) -> list[str]:
        verdict = {"passed": "CONFORMS", "failed": "DOES NOT CONFORM", "error": "COULD NOT BE CHECKED"}[result.status]
        lines = [f"== {result.name} ({result.base_url}): {verdict}  [seed {result.seed}, {result.seconds:.1f} s]"]
        if result.error:
            lines.append(f"   error: {result.error}")
        by_check: dict[str, list[list[Finding]]] = {}
        for (_, check, _, _), group in sorted(result.findings.items()):
            by_check.setdefault(check, []).append(group)
        for check, groups in by_check.items():
            lines.append("")
            lines.append(f"  ✗ {check}")
            for group in groups:
                first = group[0]
                times = f" ({len(group)} times)" if len(group) > 1 else ""
                lines.append(f"    {first.operation}: {first.title}{times}")
                lines += [f"      {text}" for text in first.message.splitlines()[:8]]
                if first.status is not None:
                    lines.append(f"      answer: HTTP {first.status} {first.response[:200]}")
                if first.requests:
                    where = f", {first.stage}" if first.stage else ""
                    lines.append(f"      reproduce (seed {first.seed}{where}):")
                    lines += [f"        {curl(request, self.redactor)}" for request in first.requests]
        checks_passed = len({check for check, _ in result.passed} - set(result.failed_checks))
        operations = len({op for _, op in result.passed})
        lines.append("")
        lines.append(
            f"  passed: {_count(checks_passed, 'check')} over {_count(operations, 'operation')} "
            f"({_count(sum(result.passed.values()), 'check result')}); "
            f"failed: {_count(len(result.failed_checks), 'check')}"
        )
        # The same error can reach the summary from several stages; once is enough.
        for check, operation, error in list(dict.fromkeys(result.errors))[:20]:
            lines.append(f"  ! error in {check} ({operation}): {error.splitlines()[0] if error else ''}")
        for check, reason in sorted(result.skipped.items()):
            lines.append(f"  - skipped {check}: {reason}")
        differences = [note for note in result.notes if note.level == "deviation"]
        for note in result.notes:
            if note.level != "deviation":
                lines.append(f"  {'!' if note.level == 'warning' else '·'} {note.message}")
        if differences:
            lines.append("")
            lines.append(
                f"  Where the server differs from the mock's choices ({_count(len(differences), 'difference')}; "
                "the vendor's documents allow them, --strict would fail them):"
            )
            lines += [f"    · {note.message}" for note in differences[:MAX_DIFFERENCES_SHOWN]]
            if len(differences) > MAX_DIFFERENCES_SHOWN:
                lines.append(f"    … and {len(differences) - MAX_DIFFERENCES_SHOWN} more (all in the JUnit report)")
        return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# ---------------------------------------------------------------------------------------------- JUnit


def _suite(result: TargetResult, redactor: Redactor) -> ET.Element:
    suite = ET.Element("testsuite", name=result.name)
    tests = failures = errors = skipped = 0
    failed_keys = {(check, operation) for (_, check, operation, _) in result.findings}
    for check, operation in sorted(set(result.passed) | failed_keys):
        tests += 1
        case = ET.SubElement(suite, "testcase", classname=f"{result.name}.{check}", name=operation)
        groups = [g for (_, c, o, _), g in result.findings.items() if (c, o) == (check, operation)]
        if groups:
            failures += 1
            first = groups[0][0]
            text = [first.message, ""]
            text += [curl(request, redactor) for request in first.requests]
            text.append(f"seed: {first.seed}")
            node = ET.SubElement(case, "failure", message=redactor.text(first.title), type=first.code or "failure")
            node.text = redactor.text("\n".join(text))
    for check, note in sorted(result.skipped.items()):
        tests += 1
        skipped += 1
        case = ET.SubElement(suite, "testcase", classname=f"{result.name}.{check}", name=check)
        ET.SubElement(case, "skipped", message=redactor.text(note))
    for check, operation, note in dict.fromkeys(result.errors):
        tests += 1
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"{result.name}.{check}", name=operation or check)
        ET.SubElement(
            case, "error", message=redactor.text(note.splitlines()[0] if note else "error")
        ).text = redactor.text(note)
    if result.error is not None or not result.finished:
        tests += 1
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"{result.name}.run", name="run")
        ET.SubElement(case, "error", message=redactor.text(result.error or "the run did not finish"))
    differences = [note.message for note in result.notes if note.level == "deviation"]
    if differences:
        out = ET.SubElement(suite, "system-out")
        out.text = redactor.text(
            "Where the server differs from the mock's choices (the vendor's documents allow them):\n"
            + "\n".join(differences)
        )
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{result.seconds:.3f}")
    return suite


_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write_junit(summary: Summary, path: str | pathlib.Path) -> None:
    """JUnit XML: a suite per target, a test case per (check, operation), skips and errors included."""
    root = ET.Element("testsuites", name="conformance")
    for result in summary.targets.values():
        root.append(_suite(result, summary.redactor))
    for element in root.iter():
        for key, value in list(element.attrib.items()):
            element.set(key, _INVALID_XML.sub("?", value))
        if element.text:
            element.text = _INVALID_XML.sub("?", element.text)
    ET.indent(root)
    pathlib.Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- fuzz findings


class FindingStore:
    """Saves each new finding of a fuzz run as `<n>-<target>-<check>.json` plus a `.sh` that replays it."""

    def __init__(self, directory: str | pathlib.Path, redactor: Redactor | None = None) -> None:
        self.directory = pathlib.Path(directory)
        self.redactor = redactor or Redactor()
        self.seen: set[tuple[str, str, str, str]] = set()
        self.saved: list[pathlib.Path] = []

    def handle(self, event: Event) -> None:
        if not isinstance(event, Outcome) or event.finding is None or event.finding.key in self.seen:
            return
        finding = event.finding
        self.seen.add(finding.key)
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{len(self.saved) + 1:03d}-{finding.target}-{finding.check}"
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
        data = json.loads(self.redactor.text(json.dumps(asdict(finding))))
        (self.directory / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        script = [
            "#!/bin/sh",
            f"# {finding.check} on {finding.operation}: {finding.title}",
            f"# seed {finding.seed} ({finding.stage}); credentials are masked as *** - fill them in",
            "",
        ]
        script += [curl(request, self.redactor) for request in finding.requests]
        path = self.directory / f"{stem}.sh"
        path.write_text(self.redactor.text("\n".join(script)) + "\n", encoding="utf-8")
        self.saved.append(path)
