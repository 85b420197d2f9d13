"""Training end to end on a small simulated set: fit, calibrate, export, serve the same."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from service.features import FeatureSpec
from service.model import RiskModel, manifest_path, save
from service.settings import Settings
from service.training import Candidate, TrainingConfig, TrainResult, train

SMALL = TrainingConfig(seed=3, days=5, scale=0.35, gbdt_trees=40)


@pytest.fixture(scope="module")
def result() -> TrainResult:
    return train(SMALL)


def serving_model(result: TrainResult, candidate: Candidate) -> RiskModel:
    from service.model import Artifact

    artifact = Artifact(
        format=result.artifact.format,
        model_version=candidate.name,
        feature_spec=result.artifact.feature_spec,
        model=candidate.artifact_model,
        calibration=candidate.calibration,
        thresholds=result.artifact.thresholds,
    )
    return RiskModel(artifact, result.spec)


@pytest.mark.parametrize("name", ["logistic", "gbdt", "hgb"])
def test_numpy_fast_path_equals_scikit_learn(result: TrainResult, name: str) -> None:
    candidate = next(c for c in result.candidates if c.name == name)
    model = serving_model(result, candidate)
    for rows in (result.test.x, result.train.x[:500]):
        expected = candidate.calibrated.predict_proba(rows)[:, 1]
        assert np.max(np.abs(model.predict_proba(rows) - expected)) <= 1e-9
        # The single-row path (the one the service uses) agrees too.
        single = np.array([model.probability(row) for row in rows[:100]])
        assert np.max(np.abs(single - expected[:100])) <= 1e-9


@pytest.mark.parametrize("name", ["logistic", "gbdt", "hgb"])
def test_reasons_add_up_to_the_raw_score(result: TrainResult, name: str) -> None:
    model = serving_model(result, next(c for c in result.candidates if c.name == name))
    rows = result.test.x[:300]
    total = model.bias() + model.contributions_many(rows).sum(axis=1)
    assert np.max(np.abs(total - model.raw_many(rows))) <= 1e-9
    batch = model.risk_many(rows, result.artifact.thresholds)
    assert batch == [model.risk(row, result.artifact.thresholds) for row in rows]


def _raised_rows(
    result: TrainResult, rng: np.random.Generator, count: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows to probe monotonicity on (real test rows and random ones within the training
    range), and for each feature the same rows with that feature raised at random."""
    top = result.train.x.max(axis=0)
    random_rows = rng.uniform(0.0, 1.0, (count, len(top))) * top
    flags = np.all(np.isin(result.train.x, (0.0, 1.0)), axis=0)
    random_rows[:, flags] = np.round(random_rows[:, flags])
    rows = np.vstack((result.test.x[:count], random_rows))
    raised = []
    for i in range(rows.shape[1]):
        up = rows.copy()
        up[:, i] += rng.uniform(0.0, 1.5, len(up)) * max(top[i], 1.0)
        raised.append(up)
    return rows, raised


def test_the_hgb_candidate_never_lowers_a_score_when_a_feature_rises(result: TrainResult) -> None:
    rng = np.random.default_rng(5)
    rows, raised = _raised_rows(result, rng, 400)
    hgb = serving_model(result, next(c for c in result.candidates if c.name == "hgb"))
    base = hgb.predict_proba(rows)
    for up in raised:
        assert np.all(hgb.predict_proba(up) >= base - 1e-12)
    # The same probe finds the unconstrained trees lowering scores: it can fail.
    gbdt = serving_model(result, next(c for c in result.candidates if c.name == "gbdt"))
    base = gbdt.predict_proba(rows)
    assert any(np.any(gbdt.predict_proba(up) < base - 1e-6) for up in raised)


def test_hgb_inner_node_values_come_from_the_leaves(result: TrainResult) -> None:
    """Inner values are count-weighted means of the leaves under them, so the bias (init
    plus the root values) is the mean raw score over the training rows; scikit-learn's own
    inner values (unshrunk Newton steps, on another scale) would not give that."""
    model = serving_model(result, next(c for c in result.candidates if c.name == "hgb"))
    assert abs(model.bias() - float(model.raw_many(result.train.x).mean())) <= 1e-9


def test_hgb_refuses_missing_values(result: TrainResult) -> None:
    from service.training import fit_hgb

    model = serving_model(result, next(c for c in result.candidates if c.name == "hgb"))
    row = result.test.x[0].copy()
    row[result.spec.names.index("tor")] = np.nan
    with pytest.raises(ValueError, match=r"NaN features.*: tor"):
        model.risk(row, result.artifact.thresholds)
    with pytest.raises(ValueError, match=r"NaN features.*: tor"):
        model.predict_proba(np.vstack((result.test.x[:3], row)))
    holey = dataclasses.replace(result.train, x=np.vstack((result.train.x[:-1], row)))
    with pytest.raises(ValueError, match="NaN"):
        fit_hgb(holey, result.calibration, SMALL)


def test_the_trained_model_ranks_fraud_above_legitimate_traffic(result: TrainResult) -> None:
    test = result.test
    assert 0 < test.y.sum() < len(test.y)
    auc = roc_auc_score(test.y, result.model.predict_proba(test.x))
    assert auc > 0.85
    populations = result.manifest.metrics["test_by_population"]
    fraud = [p["mean_score"] for p in populations.values() if p["fraud"] == 1.0]
    legit = [p["mean_score"] for p in populations.values() if p["fraud"] == 0.0]
    assert fraud and legit and min(fraud) > max(legit)


def test_split_is_by_time(result: TrainResult) -> None:
    assert result.train.times.max() < result.calibration.times.min()
    assert result.calibration.times.max() < result.test.times.min()
    assert len(result.train) > len(result.calibration) > 0


def test_artifact_round_trip_and_manifest(result: TrainResult, tmp_path: Path) -> None:
    path = tmp_path / "risk-model.json"
    save(result.artifact, result.manifest, path)
    loaded = RiskModel.load(path, FeatureSpec(Settings().reuse_window_labels))
    assert loaded.artifact == result.artifact
    rows = result.test.x
    assert np.array_equal(loaded.predict_proba(rows), result.model.predict_proba(rows))
    manifest = loaded.manifest
    assert manifest is not None
    assert manifest.feature_spec.hash == result.spec.hash
    assert {"numpy", "scikit-learn", "python"} <= set(manifest.library_versions)
    assert manifest.training_data["sha256"] and manifest.training_data["rows"] > 1000
    assert {"roc_auc", "average_precision"} <= set(manifest.metrics["test"])
    assert manifest.thresholds == result.artifact.thresholds
    assert b"pickle" not in path.read_bytes() and manifest_path(path).exists()


def test_the_hgb_artifact_round_trips_through_json(result: TrainResult, tmp_path: Path) -> None:
    from service.model import Gbdt

    finished = next(f for f in result.finished if f.candidate.name == "hgb")
    path = tmp_path / "hgb.json"
    save(finished.artifact, result.manifest, path)
    assert b'"compare_as": "float64"' in path.read_bytes()
    loaded = RiskModel.load(path, FeatureSpec(Settings().reuse_window_labels))
    assert loaded.artifact == finished.artifact
    assert isinstance(loaded.artifact.model, Gbdt) and loaded.artifact.model.compare_as == "float64"
    rows = result.test.x
    assert np.array_equal(loaded.predict_proba(rows), finished.model.predict_proba(rows))


def test_training_is_reproducible(result: TrainResult) -> None:
    again = train(SMALL)
    assert again.artifact == result.artifact
    assert again.manifest.metrics == result.manifest.metrics
    assert again.manifest.training_data == result.manifest.training_data


def test_acceptance_checks_gate_promotion(result: TrainResult) -> None:
    from service.baseline_model import build_baseline
    from service.training import acceptance_checks

    artifact, manifest = build_baseline()
    baseline = RiskModel(artifact, result.spec, manifest)
    checks = acceptance_checks(baseline, artifact.thresholds, result.spec)
    assert len(checks) == 9 and all(checks.values())  # the shipped baseline passes them all
    assert result.manifest.metrics["acceptance"] == result.acceptance
    # A model that ignores every signal fails them: the gate can say no.
    from service.model import Artifact, Logistic

    blind = Artifact(
        format=artifact.format,
        model_version="blind",
        feature_spec=artifact.feature_spec,
        model=Logistic(intercept=-5.0, coefficients=[0.0] * len(result.spec)),
        thresholds=artifact.thresholds,
    )
    verdicts = acceptance_checks(RiskModel(blind, result.spec), blind.thresholds, result.spec)
    assert not all(verdicts.values())


def test_the_logistic_model_learns_no_negative_weight(result: TrainResult) -> None:
    import msgspec

    from service.baseline_model import prior_weights
    from service.model import Logistic
    from service.training import fit_logistic

    logistic = next(c for c in result.candidates if c.name == "logistic")
    assert isinstance(logistic.artifact_model, Logistic)
    weights = logistic.artifact_model.coefficients
    assert min(weights) >= 0.0
    assert logistic.dropped and all(weights[i] == 0.0 for i in logistic.dropped)
    dropped = result.manifest.metrics["logistic_dropped_features"]
    assert dropped == [result.spec.names[i] for i in logistic.dropped]
    # On the same days, unconstrained, the simulator's mix teaches it negative weights.
    free = fit_logistic(
        result.train,
        result.calibration,
        msgspec.structs.replace(SMALL, non_negative=False),
        prior_weights(result.spec),
    )
    assert isinstance(free.artifact_model, Logistic)
    assert min(free.artifact_model.coefficients) < 0.0 and not free.dropped


def test_the_gate_refuses_a_model_that_discounts_a_risk_signal(result: TrainResult) -> None:
    import msgspec

    from service.baseline_model import build_baseline
    from service.model import Logistic
    from service.training import acceptance_checks

    artifact, _ = build_baseline()
    assert isinstance(artifact.model, Logistic)
    coefficients = list(artifact.model.coefficients)
    vpn = result.spec.names.index("vpn")
    coefficients[vpn] = -coefficients[vpn]
    discounting = msgspec.structs.replace(
        artifact, model=msgspec.structs.replace(artifact.model, coefficients=coefficients)
    )
    model = RiskModel(discounting, result.spec)
    checks = acceptance_checks(model, discounting.thresholds, result.spec)
    assert not checks["no signal or count lowers a clean visitor's score"]


def _scores(*groups: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Calibration-day scores and labels from (score, count, label) groups."""
    scores = np.concatenate([np.full(count, score) for score, count, _ in groups])
    labels = np.concatenate([np.full(count, label) for _, count, label in groups])
    return scores.astype(np.int64), labels.astype(np.int64)


# Capacity alone (the old rule) would review from score 5 here: a band that fits in 5 % of
# traffic but is only 16 % fraud, because of 500 legitimate events at 8. Known answer with the
# defaults: block from 50 (first precision >= 0.95 at or above the floor), centred in the gap
# 41-69 -> 56; review from 9 (the band 9-55 holds 2.3 % of traffic, 85 % fraud), centred in
# the gap 9-29 -> 20.
MIXED = _scores(
    (1, 14_000, 0),
    (8, 500, 0),
    (8, 5, 1),
    (30, 50, 0),
    (30, 100, 1),
    (40, 5, 0),
    (40, 200, 1),
    (70, 10, 0),
    (90, 600, 1),
)


def test_thresholds_meet_the_block_precision_and_the_review_band_floor() -> None:
    from service.training import choose_thresholds, operating_point

    scores, labels = MIXED
    config = TrainingConfig()
    thresholds = choose_thresholds(scores, labels, config)
    assert (thresholds.review, thresholds.block) == (20, 56)
    point = operating_point(scores, labels, thresholds)
    assert point["blocked_precision"] >= config.block_precision
    assert point["review_share"] <= config.review_rate
    assert point["review_precision"] >= config.review_precision
    assert thresholds.review >= config.review_floor and thresholds.block >= config.block_floor
    # Without the precision and floor terms: a cheaper-looking queue full of legitimate events.
    capacity_only = TrainingConfig(review_precision=0.0, review_floor=1, block_floor=1)
    loose = choose_thresholds(scores, labels, capacity_only)
    assert (loose.review, loose.block) == (5, 36)
    assert operating_point(scores, labels, loose)["review_precision"] < config.review_precision


def test_bimodal_scores_do_not_send_one_percent_events_to_review() -> None:
    """The failure that kept the first trained model from serving: legitimate traffic at
    0-1, fraud at 90-100, 3.5 % of traffic at 1. Capacity alone reviews from 1."""
    from service.training import choose_thresholds

    scores, labels = _scores((0, 5000, 0), (1, 200, 0), (1, 4, 1), (90, 300, 1), (100, 400, 1))
    capacity_only = TrainingConfig(review_precision=0.0, review_floor=1, block_floor=1)
    assert choose_thresholds(scores, labels, capacity_only).review == 1
    thresholds = choose_thresholds(scores, labels, TrainingConfig())
    # No calibration event between 2 and 89: no review band on those days; both thresholds
    # sit in the gap, the block threshold at its floor.
    assert thresholds.block == 50 and 2 <= thresholds.review < thresholds.block
    assert not ((scores >= thresholds.review) & (scores < thresholds.block)).any()


def test_selection_prefers_the_cheaper_model_within_the_margin(result: TrainResult) -> None:
    from service.training import select_candidate

    logistic, gbdt = (
        next(c for c in result.candidates if c.name == n) for n in ("logistic", "gbdt")
    )

    def with_ap(candidate: Candidate, ap: float) -> Candidate:
        return dataclasses.replace(candidate, validation={"average_precision": ap})

    close = [with_ap(logistic, 0.990), with_ap(gbdt, 0.995)]
    assert select_candidate(close, margin=0.01).name == "logistic"
    assert select_candidate(close, margin=0.0).name == "gbdt"  # best average precision
    apart = [with_ap(logistic, 0.970), with_ap(gbdt, 0.995)]
    assert select_candidate(apart, margin=0.01).name == "gbdt"


def test_selection_prefers_a_gate_passing_candidate_over_a_better_failing_one(
    result: TrainResult,
) -> None:
    from service.training import Finished, select_servable

    logistic, gbdt = (
        next(f for f in result.finished if f.candidate.name == n) for n in ("logistic", "gbdt")
    )
    stories = list(logistic.acceptance)

    def made(finished: Finished, ap: float, failing: int) -> Finished:
        return dataclasses.replace(
            finished,
            candidate=dataclasses.replace(finished.candidate, validation={"average_precision": ap}),
            acceptance={story: i >= failing for i, story in enumerate(stories)},
        )

    # The trees are far better by average precision but fail a story: the logistic model,
    # which passes them all, is chosen among the passing candidates.
    chosen, rule = select_servable([made(logistic, 0.90, 0), made(gbdt, 0.99, 1)], margin=0.01)
    assert (chosen.candidate.name, rule) == ("logistic", "passing")
    # Both pass: average precision and the margin decide, as before.
    chosen, rule = select_servable([made(logistic, 0.90, 0), made(gbdt, 0.99, 0)], margin=0.01)
    assert (chosen.candidate.name, rule) == ("gbdt", "passing")
    # None passes: the best of all is still chosen (recorded, never promoted).
    chosen, rule = select_servable([made(logistic, 0.90, 2), made(gbdt, 0.99, 1)], margin=0.01)
    assert (chosen.candidate.name, rule) == ("gbdt", "all")
    assert not chosen.passes_gate


def test_every_candidate_is_finished_and_recorded(result: TrainResult) -> None:
    metrics = result.manifest.metrics
    assert [f.candidate for f in result.finished] == result.candidates
    assert set(metrics["candidates"]) == {"logistic", "gbdt", "hgb"}
    passing = [f.candidate.name for f in result.finished if f.passes_gate]
    assert metrics["selection"]["rule"] == result.selection == ("passing" if passing else "all")
    assert metrics["selection"]["passing"] == passing
    for finished in result.finished:
        recorded = metrics["candidates"][finished.candidate.name]
        assert recorded["acceptance"] == finished.acceptance
        assert recorded["passes_gate"] == finished.passes_gate
        assert recorded["model_version"] == finished.artifact.model_version
        assert {"roc_auc", "average_precision"} <= set(recorded["test"])
    chosen = metrics["candidates"][result.chosen.name]
    assert chosen["model_version"] == result.artifact.model_version
    assert chosen["test"] == metrics["test"] and chosen["acceptance"] == metrics["acceptance"]
    if passing:
        assert result.chosen.name in passing


def test_the_served_model_passes_the_gate() -> None:
    """The served model is a trained one that passed every story when it was promoted, or
    the hand-set baseline (served while no trained candidate passes all of them)."""
    from service.app import DEFAULT_MODEL
    from service.training import acceptance_checks

    spec = FeatureSpec(Settings().reuse_window_labels)
    served = RiskModel.load(DEFAULT_MODEL, spec)
    assert served.manifest is not None
    checks = acceptance_checks(served, served.artifact.thresholds, spec)
    assert len(checks) == 9 and all(checks.values()), checks
    if served.manifest.training_data.get("source") == "simulated":
        metrics = served.manifest.metrics
        assert metrics["acceptance"] == checks
        # Chosen among the gate-passing candidates, and recorded as such.
        assert metrics["selection"]["rule"] == "passing"
        assert metrics["chosen"] in metrics["selection"]["passing"]
        assert metrics["candidates"][metrics["chosen"]]["acceptance"] == checks
    else:
        baseline = DEFAULT_MODEL.with_name("baseline-model.json")
        assert DEFAULT_MODEL.read_bytes() == baseline.read_bytes()


def test_the_prior_holds_where_the_data_are_silent_and_the_bound_is_an_optimum() -> None:
    """``PriorLogistic``: a feature the rows never show keeps its prior weight; a feature
    the data contradict ends at the bound 0 with a gradient that pushes further down
    (Karush-Kuhn-Tucker), and every free weight has a zero gradient."""
    from scipy.special import expit

    from service.training import PriorLogistic

    rng = np.random.default_rng(3)
    n = 4000
    x = np.zeros((n, 4))
    x[:, 0] = rng.random(n) < 0.3  # evidence of risk
    x[:, 1] = rng.random(n) < 0.3  # seen more often among the legitimate rows
    # column 2: never set in these rows; column 3: noise
    x[:, 3] = rng.random(n)
    logit = -2.0 + 2.5 * x[:, 0] - 1.5 * x[:, 1]
    y = (rng.random(n) < expit(logit)).astype(np.float64)
    prior = np.array([1.0, 1.0, 3.0, 0.5])
    fitted = PriorLogistic(prior=prior, prior_sd=1.0).fit(x, y)
    weights = fitted.coef_
    assert weights[2] == pytest.approx(3.0, abs=1e-4)  # silent data: the prior stands
    assert weights[1] == 0.0  # a discount for evidence is refused, at the bound
    assert weights[0] > 1.5  # plenty of evidence overrides the prior
    error = expit(fitted.intercept_ + x @ weights) - y
    gradient = x.T @ error + (weights - prior)
    free = weights > 0
    assert np.all(np.abs(gradient[free]) < 1e-2)
    assert gradient[1] > 0  # at the bound, the objective would still fall below zero
    assert abs(error.sum()) < 1e-2  # the intercept is at its optimum too
    # Unbounded, the same rows give the contradicted feature a negative weight.
    free_fit = PriorLogistic(prior=prior, prior_sd=1.0, non_negative=False).fit(x, y)
    assert free_fit.coef_[1] < 0


def test_a_training_file_that_cannot_be_trained_on_is_refused_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_riskwire_env: None,
) -> None:
    """``train --data``: a line that is not a training row (with its number), rows of another
    feature spec, no labelled row at all: exit status 1 and why, nothing written; a missing
    file: exit status 2."""
    import json

    from service.training import main

    spec = FeatureSpec(Settings().reuse_window_labels)

    def row(label: int, spec_hash: str = spec.hash) -> str:
        return json.dumps(
            {
                "requestId": "r",
                "time": 1,
                "label": label,
                "labelName": "fraud",
                "labelSource": "request",
                "features": [0.0] * len(spec),
                "featureSpecHash": spec_hash,
            }
        )

    cases = {
        "broken.jsonl": ([row(1), "{not json"], "broken.jsonl, line 2: "),
        "shape.jsonl": ([row(1), '{"requestId": 5}'], "shape.jsonl, line 2: Expected `str`"),
        "other.jsonl": ([row(1), row(0, "0" * 64)], "holds features of another feature spec"),
        "unlabelled.jsonl": ([row(-1)], "holds no row labelled fraud or legit"),
    }
    out = tmp_path / "model.json"
    for file_name, (lines, message) in cases.items():
        data = tmp_path / file_name
        data.write_text("\n".join(lines) + "\n")
        assert main(["--data", str(data), "--out", str(out), "--promote-to", str(out)]) == 1
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error, (file_name, error)
        assert not out.exists()
    with pytest.raises(SystemExit) as refused:
        main(["--data", str(tmp_path / "missing.jsonl"), "--out", str(out)])
    assert refused.value.code == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
