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
    """One pass over every load figure, the baselines next to what they are compared with."""

    baseline_c1: WrkResult
    score_c1: WrkResult
    baseline_c32: WrkResult
    score_c32: WrkResult
    webhook_c32: WrkResult


@dataclass(frozen=True)
class Measured:
    rounds: Sequence[Round]
    score_commands: CommandCount | None
    webhook_commands: CommandCount | None

    def series(self, name: str) -> list[WrkResult]:
        """One figure's run (a ``Round`` field) from every round, in order."""
        return [getattr(r, name) for r in self.rounds]


def ratios(runs: Sequence[WrkResult], baselines: Sequence[WrkResult]) -> list[float]:
    """Each round's rate over the baseline's of the same round: the machine's mood changes
    between rounds more than within one, so a round's ratio is steadier than its rates."""
    return [r.rate / b.rate if b.rate else 0.0 for r, b in zip(runs, baselines, strict=True)]


def _verdict(ok: bool | None, *runs: WrkResult) -> str:
    """pass / FAIL against a target, or info (``ok`` None) for a figure without one."""
    # A failed or refused request makes a rate meaningless, whatever its value.
    errors = sum(run.errors.total for run in runs)
    if errors:
        return f"FAIL ({errors} errors)"
    if ok is None:
        return "info"
    return "pass" if ok else "FAIL"


def _rate_row(
    figure: str,
    runs: Sequence[WrkResult],
    baselines: Sequence[WrkResult],
    min_ratio: float | None,
) -> Row:
    """Rates and ratio as medians over the rounds."""
    ratio = median(ratios(runs, baselines))
    return Row(
        figure=figure,
        value=f"{median(r.rate for r in runs):,.0f}",
        baseline=f"{median(b.rate for b in baselines):,.0f}",
        ratio=f"{ratio:.2f}",
        target=f">= {min_ratio:g} x baseline" if min_ratio is not None else NONE,
        result=_verdict(None if min_ratio is None else ratio >= min_ratio, *runs, *baselines),
    )


def _commands_row(figure: str, count: CommandCount | None) -> Row:
    value = f"{count.per_request:.1f}" if count is not None else "n/a"
    return Row(figure, value, NONE, NONE, NONE, "info")


def rows(m: Measured) -> list[Row]:
    n = len(m.rounds)
    each = {name: m.series(name) for name in Round.__dataclass_fields__}
    p50_ms = median(run.p50_us for run in each["score_c1"]) / 1000
    return [
        _rate_row(
            f"/v1/score req/s c=32 (median of {n})",
            each["score_c32"],
            each["baseline_c32"],
            SCORE_RATE_MIN_RATIO,
        ),
        Row(
            figure=f"/v1/score p50 ms c=1 (median of {n})",
            value=f"{p50_ms:.3f}",
            baseline=f"{median(run.p50_us for run in each['baseline_c1']) / 1000:.3f}",
            ratio=NONE,
            target=f"<= {SCORE_P50_MAX_MS:g} ms",
            result=_verdict(p50_ms <= SCORE_P50_MAX_MS, *each["score_c1"]),
        ),
        _rate_row(
            f"/v1/score req/s c=1 (median of {n})", each["score_c1"], each["baseline_c1"], None
        ),
        _rate_row(
            f"webhook req/s c=32 (median of {n})",
            each["webhook_c32"],
            each["baseline_c32"],
            WEBHOOK_RATE_MIN_RATIO,
        ),
        _commands_row("Redis commands per /v1/score", m.score_commands),
        _commands_row("Redis commands per webhook", m.webhook_commands),
    ]


def round_notes(m: Measured) -> list[str]:
    """Every round's ratios, so the spread behind each median is on the record."""

    def listed(runs: str, baselines: str) -> str:
        return ", ".join(f"{v:.2f}" for v in ratios(m.series(runs), m.series(baselines)))

    return [
        f"Ratios per round: /v1/score c=32 {listed('score_c32', 'baseline_c32')}; "
        f"webhook c=32 {listed('webhook_c32', 'baseline_c32')}; "
        f"/v1/score c=1 {listed('score_c1', 'baseline_c1')}"
    ]
