"""The reported figures and their targets, from the measured runs."""

from __future__ import annotations

from dataclasses import dataclass

from service.bench.redis_stats import CommandCount
from service.bench.report import Row
from service.bench.wrk import WrkResult

SCORE_RATE_MIN_RATIO = 0.6
SCORE_P50_MAX_MS = 0.6
WEBHOOK_RATE_MIN_RATIO = 0.4
NONE = "—"


@dataclass(frozen=True)
class Measured:
    baseline_c1: WrkResult
    baseline_c32: WrkResult
    score_c1: WrkResult
    score_c32: WrkResult
    webhook_c32: WrkResult
    score_commands: CommandCount | None
    webhook_commands: CommandCount | None


def _verdict(ok: bool | None, *runs: WrkResult) -> str:
    """pass / FAIL against a target, or info (``ok`` None) for a figure without one."""
    # A failed or refused request makes a rate meaningless, whatever its value.
    errors = sum(run.errors.total for run in runs)
    if errors:
        return f"FAIL ({errors} errors)"
    if ok is None:
        return "info"
    return "pass" if ok else "FAIL"


def _rate_row(figure: str, run: WrkResult, baseline: WrkResult, min_ratio: float | None) -> Row:
    ratio = run.rate / baseline.rate if baseline.rate else 0.0
    return Row(
        figure=figure,
        value=f"{run.rate:,.0f}",
        baseline=f"{baseline.rate:,.0f}",
        ratio=f"{ratio:.2f}",
        target=f">= {min_ratio:g} x baseline" if min_ratio is not None else NONE,
        result=_verdict(None if min_ratio is None else ratio >= min_ratio, run, baseline),
    )


def _commands_row(figure: str, count: CommandCount | None) -> Row:
    value = f"{count.per_request:.1f}" if count is not None else "n/a"
    return Row(figure, value, NONE, NONE, NONE, "info")


def rows(m: Measured) -> list[Row]:
    p50_ms = m.score_c1.p50_us / 1000
    return [
        _rate_row("/v1/score req/s c=32", m.score_c32, m.baseline_c32, SCORE_RATE_MIN_RATIO),
        Row(
            figure="/v1/score p50 ms c=1",
            value=f"{p50_ms:.3f}",
            baseline=f"{m.baseline_c1.p50_us / 1000:.3f}",
            ratio=NONE,
            target=f"<= {SCORE_P50_MAX_MS:g} ms",
            result=_verdict(p50_ms <= SCORE_P50_MAX_MS, m.score_c1),
        ),
        _rate_row("/v1/score req/s c=1", m.score_c1, m.baseline_c1, None),
        _rate_row("webhook req/s c=32", m.webhook_c32, m.baseline_c32, WEBHOOK_RATE_MIN_RATIO),
        _commands_row("Redis commands per /v1/score", m.score_commands),
        _commands_row("Redis commands per webhook", m.webhook_commands),
    ]
