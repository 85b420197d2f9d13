"""The results table, printed and as Markdown, and its place in docs/BENCHMARKS.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from service.bench.machine import Machine
from service.bench.wrk import WrkResult

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
HEADER = ("figure", "value", "baseline", "ratio", "target", "result")

NEW_FILE_HEAD = """# Benchmarks

`make bench` loads riskwire and a bare Litestar + msgspec baseline with wrk on this machine
and reports each figure as a ratio against the baseline measured in the same run (see
`service/bench/`). The section between the markers below is rewritten by every run; notes
written outside it are kept.

"""


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    result: str

    def cells(self) -> tuple[str, ...]:
        return (self.figure, self.value, self.baseline, self.ratio, self.target, self.result)


@dataclass(frozen=True)
class Run:
    """One measured wrk run (warm-ups are not reported)."""

    label: str
    connections: int
    threads: int
    pool_size: int
    command: str
    result: WrkResult
    # Server process CPU per request: near the request's latency at c=1 means CPU-bound.
    cpu_ms_per_request: float | None
    # The machine's CPU time stolen by the hypervisor during the run (a share of all of it):
    # a run with much of it measured the neighbours as much as the code.
    steal_share: float | None = None


@dataclass(frozen=True)
class Report:
    when: datetime
    rows: list[Row]
    runs: list[Run]
    notes: list[str]
    machine: Machine
    commands: list[str]

    @property
    def passed(self) -> bool:
        return all(row.result != "FAIL" for row in self.rows)


def text_table(rows: list[Row]) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    # Numbers read best right-aligned; names and verdicts left.
    right = {1, 2, 3}

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(HEADER), rule, *(render(cells) for cells in table[1:])])


def _ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f}"


def runs_table(runs: list[Run]) -> list[str]:
    lines = [
        "| run | connections | threads | distinct bodies | requests | seconds | req/s "
        "| p50 ms | p90 ms | p99 ms | server CPU ms/req | CPU stolen | errors |",
        "| --- " + "| ---: " * 12 + "|",
    ]
    for run in runs:
        r = run.result
        cpu = f"{run.cpu_ms_per_request:.2f}" if run.cpu_ms_per_request is not None else "n/a"
        stolen = f"{run.steal_share:.1%}" if run.steal_share is not None else "n/a"
        lines.append(
            f"| {run.label} | {run.connections} | {run.threads} | {run.pool_size} | "
            f"{r.requests} | {r.duration_us / 1e6:.2f} | {r.rate:.0f} | {_ms(r.p50_us)} | "
            f"{_ms(r.p90_us)} | {_ms(r.p99_us)} | {cpu} | {stolen} | {r.errors.total} |"
        )
    return lines


def markdown(report: Report) -> str:
    lines = [
        f"## Latest run: {report.when:%Y-%m-%d %H:%M} UTC",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        *("| " + " | ".join(row.cells()) + " |" for row in report.rows),
        "",
        *(f"- {note}" for note in report.notes),
        "",
        "### wrk runs",
        "",
        "Each run follows a 1 s warm-up at the same concurrency; latencies are wrk's, from "
        "request written to response read.",
        "",
        *runs_table(report.runs),
        "",
        "### Machine",
        "",
        *(f"- {line}" for line in report.machine.lines()),
        "",
        "### Commands",
        "",
        "```sh",
        *report.commands,
        "```",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace what lies between the markers; keep everything else in the file."""
    block = f"{BEGIN}\n{section}\n{END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(NEW_FILE_HEAD + block + "\n")
        return
    text = path.read_text()
    start = text.find(BEGIN)
    end = text.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start < 0 or end < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + block + "\n")
        return
    path.write_text(text[:start] + block + text[end + len(END) :])
