"""The reported figures and their targets, from the measured runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from service.bench.redis_stats import CommandCount
from service.bench.report import Row
from service.bench.wrk import WrkResult

SCORE_RATE_MIN_RATIO = 0.6
SCORE_P50_MAX_MS = 0.6
WEBHOOK_RATE_MIN_RATIO = 0.4
NONE = "—"


@dataclass(frozen=True)
class Round:
    """One pass over every load figure, each measured run between two baseline runs: a
    machine that speeds up or slows down during the round (this one's rate moved by a third
    within a minute) then weighs on a run and on what it is compared with alike."""

    baseline_c1: WrkResult
    score_c1: WrkResult
    baseline_c1_after: WrkResult
    baseline_c32: WrkResult
    score_c32: WrkResult
    baseline_c32_between: WrkResult
    webhook_c32: WrkResult
    baseline_c32_after: WrkResult


# Each measured figure, with the two baseline runs around it.
BRACKETS = {
    "score_c1": ("baseline_c1", "baseline_c1_after"),
    "score_c32": ("baseline_c32", "baseline_c32_between"),
    "webhook_c32": ("baseline_c32_between", "baseline_c32_after"),
}


@dataclass(frozen=True)
class Measured:
    rounds: Sequence[Round]
    score_commands: CommandCount | None
    webhook_commands: CommandCount | None

    def series(self, name: str) -> list[WrkResult]:
        """One figure's run (a ``Round`` field) from every round, in order."""
        return [getattr(r, name) for r in self.rounds]

    def baseline_rates(self, name: str) -> list[float]:
        """Per round, the mean rate of the two baseline runs around figure ``name``."""
        before, after = BRACKETS[name]
        return [(getattr(r, before).rate + getattr(r, after).rate) / 2 for r in self.rounds]

    def ratios(self, name: str) -> list[float]:
        """Each round's rate over its own baseline's: the machine's mood changes between
        rounds more than within one, so a round's ratio is steadier than its rates."""
        return [
            run.rate / base if base else 0.0
            for run, base in zip(self.series(name), self.baseline_rates(name), strict=True)
        ]

    def baseline_runs(self, name: str) -> list[WrkResult]:
        return [run for field in BRACKETS[name] for run in self.series(field)]


def _verdict(ok: bool | None, *runs: WrkResult) -> str:
    """pass / FAIL against a target, or info (``ok`` None) for a figure without one."""
    # A failed or refused request makes a rate meaningless, whatever its value.
    errors = sum(run.errors.total for run in runs)
    if errors:
        return f"FAIL ({errors} errors)"
    if ok is None:
        return "info"
    return "pass" if ok else "FAIL"


def _rate_row(figure: str, m: Measured, name: str, min_ratio: float | None) -> Row:
    """Rates and ratio as medians over the rounds."""
    ratio = median(m.ratios(name))
    runs = m.series(name)
    return Row(
        figure=figure,
        value=f"{median(r.rate for r in runs):,.0f}",
        baseline=f"{median(m.baseline_rates(name)):,.0f}",
        ratio=f"{ratio:.2f}",
        target=f">= {min_ratio:g} x baseline" if min_ratio is not None else NONE,
        result=_verdict(
            None if min_ratio is None else ratio >= min_ratio, *runs, *m.baseline_runs(name)
        ),
    )


def _commands_row(figure: str, count: CommandCount | None) -> Row:
    value = f"{count.per_request:.1f}" if count is not None else "n/a"
    return Row(figure, value, NONE, NONE, NONE, "info")


def rows(m: Measured) -> list[Row]:
    n = len(m.rounds)
    score_c1 = m.series("score_c1")
    p50_ms = median(run.p50_us for run in score_c1) / 1000
    return [
        _rate_row(f"/v1/score req/s c=32 (median of {n})", m, "score_c32", SCORE_RATE_MIN_RATIO),
        Row(
            figure=f"/v1/score p50 ms c=1 (median of {n})",
            value=f"{p50_ms:.3f}",
            baseline=f"{median(run.p50_us for run in m.baseline_runs('score_c1')) / 1000:.3f}",
            ratio=NONE,
            target=f"<= {SCORE_P50_MAX_MS:g} ms",
            result=_verdict(p50_ms <= SCORE_P50_MAX_MS, *score_c1),
        ),
        _rate_row(f"/v1/score req/s c=1 (median of {n})", m, "score_c1", None),
        _rate_row(f"webhook req/s c=32 (median of {n})", m, "webhook_c32", WEBHOOK_RATE_MIN_RATIO),
        _commands_row("Redis commands per /v1/score", m.score_commands),
        _commands_row("Redis commands per webhook", m.webhook_commands),
    ]


def round_notes(m: Measured) -> list[str]:
    """Every round's ratios, so the spread behind each median is on the record."""

    def listed(name: str) -> str:
        return ", ".join(f"{v:.2f}" for v in m.ratios(name))

    return [
        f"Ratios per round, each run against the mean of the baseline runs before and after "
        f"it: /v1/score c=32 {listed('score_c32')}; webhook c=32 {listed('webhook_c32')}; "
        f"/v1/score c=1 {listed('score_c1')}"
    ]
