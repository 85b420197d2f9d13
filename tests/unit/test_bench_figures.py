"""The bench's figures: medians over rounds, each round's service rate over its own baseline."""

from __future__ import annotations

from service.bench.figures import Measured, Round, round_notes, rows
from service.bench.wrk import Errors, WrkResult

NO_ERRORS = Errors(connect=0, read=0, write=0, status=0, timeout=0)


def run(rate: int, p50_us: int = 500, errors: Errors = NO_ERRORS) -> WrkResult:
    # One second of load: the rate is the request count.
    return WrkResult(rate, 1_000_000, 0, p50_us, p50_us, p50_us, p50_us, float(p50_us), errors)


def a_round(base: int, score: int, webhook: int, p50_us: int = 500) -> Round:
    return Round(run(base, 200), run(score // 2, p50_us), run(base), run(score), run(webhook))


def test_the_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # The machine slows down in round 2: its rates fall but its ratio holds. The median
    # ratio comes from the rounds (0.50, 0.50, 0.70), not from the median rates.
    measured = Measured(
        [a_round(1000, 500, 400), a_round(600, 300, 240), a_round(1000, 700, 450)], None, None
    )
    by_figure = {row.figure: row for row in rows(measured)}
    score = by_figure["/v1/score req/s c=32 (median of 3)"]
    assert (score.value, score.baseline, score.ratio) == ("500", "1,000", "0.50")
    assert score.result == "FAIL"
    webhook = by_figure["webhook req/s c=32 (median of 3)"]
    assert (webhook.ratio, webhook.result) == ("0.40", "pass")
    assert round_notes(measured) == [
        "Ratios per round: /v1/score c=32 0.50, 0.50, 0.70; webhook c=32 0.40, 0.40, 0.45; "
        "/v1/score c=1 0.25, 0.25, 0.35"
    ]


def test_p50_is_the_median_round_and_errors_fail_a_figure() -> None:
    measured = Measured(
        [a_round(1000, 700, 500, 900), a_round(1000, 700, 500, 550), a_round(1000, 700, 500, 580)],
        None,
        None,
    )
    p50 = next(row for row in rows(measured) if row.figure.startswith("/v1/score p50"))
    assert (p50.value, p50.result) == ("0.580", "pass")
    failing = Errors(connect=0, read=0, write=0, status=3, timeout=0)
    broken = Round(run(1000), run(350), run(1000), run(700, errors=failing), run(500))
    score = rows(Measured([broken], None, None))[0]
    assert score.result == "FAIL (3 errors)"
