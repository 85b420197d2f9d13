"""The bench's figures: medians over rounds, each round's service rate over its own baselines
(the mean of the baseline runs just before and just after it)."""

from __future__ import annotations

from service.bench.figures import Measured, Round, round_notes, rows
from service.bench.wrk import Errors, WrkResult

NO_ERRORS = Errors(connect=0, read=0, write=0, status=0, timeout=0)


def run(rate: int, p50_us: int = 500, errors: Errors = NO_ERRORS) -> WrkResult:
    # One second of load: the rate is the request count.
    return WrkResult(rate, 1_000_000, 0, p50_us, p50_us, p50_us, p50_us, float(p50_us), errors)


def a_round(base: int, score: int, webhook: int, p50_us: int = 500) -> Round:
    return Round(
        run(base, 200),
        run(score // 2, p50_us),
        run(base, 200),
        run(base),
        run(score),
        run(base),
        run(webhook),
        run(base),
    )


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
        "Ratios per round, each run against the mean of the baseline runs before and after "
        "it: /v1/score c=32 0.50, 0.50, 0.70; webhook c=32 0.40, 0.40, 0.45; "
        "/v1/score c=1 0.25, 0.25, 0.35"
    ]


def test_each_run_is_compared_with_the_baselines_around_it() -> None:
    # The machine slows down through the round: the baseline runs 1000, then 800 between
    # the two measured runs, then 600. The score run is held to 900, the webhook to 700;
    # against the first baseline alone the webhook would read 0.35 and fail.
    drifting = Round(
        run(1000, 200),
        run(400),
        run(800, 200),
        run(1000),
        run(540),
        run(800),
        run(350),
        run(600),
    )
    measured = Measured([drifting], None, None)
    by_figure = {row.figure: row for row in rows(measured)}
    score = by_figure["/v1/score req/s c=32 (median of 1)"]
    assert (score.baseline, score.ratio, score.result) == ("900", "0.60", "pass")
    webhook = by_figure["webhook req/s c=32 (median of 1)"]
    assert (webhook.baseline, webhook.ratio, webhook.result) == ("700", "0.50", "pass")
    c1 = by_figure["/v1/score req/s c=1 (median of 1)"]
    assert (c1.baseline, c1.ratio) == ("900", "0.44")


def test_p50_is_the_median_round_and_errors_fail_a_figure() -> None:
    measured = Measured(
        [a_round(1000, 700, 500, 900), a_round(1000, 700, 500, 550), a_round(1000, 700, 500, 580)],
        None,
        None,
    )
    p50 = next(row for row in rows(measured) if row.figure.startswith("/v1/score p50"))
    assert (p50.value, p50.result) == ("0.580", "pass")
    failing = Errors(connect=0, read=0, write=0, status=3, timeout=0)
    broken = Round(
        run(1000),
        run(350),
        run(1000),
        run(1000),
        run(700, errors=failing),
        run(1000),
        run(500),
        run(1000),
    )
    score = rows(Measured([broken], None, None))[0]
    assert score.result == "FAIL (3 errors)"
    # A failing baseline run makes the figures it brackets meaningless too.
    base_failing = Round(
        run(1000),
        run(350),
        run(1000),
        run(1000),
        run(700),
        run(1000),
        run(500),
        run(1000, errors=failing),
    )
    by_figure = {row.figure: row for row in rows(Measured([base_failing], None, None))}
    assert by_figure["webhook req/s c=32 (median of 1)"].result == "FAIL (3 errors)"
    assert by_figure["/v1/score req/s c=32 (median of 1)"].result == "pass"
