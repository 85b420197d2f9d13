"""Training end to end on a small simulated set: fit, calibrate, export, serve the same."""

from __future__ import annotations

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


@pytest.mark.parametrize("name", ["logistic", "gbdt"])
def test_numpy_fast_path_equals_scikit_learn(result: TrainResult, name: str) -> None:
    candidate = next(c for c in result.candidates if c.name == name)
    model = serving_model(result, candidate)
    for rows in (result.test.x, result.train.x[:500]):
        expected = candidate.calibrated.predict_proba(rows)[:, 1]
        assert np.max(np.abs(model.predict_proba(rows) - expected)) <= 1e-9
        # The single-row path (the one the service uses) agrees too.
        single = np.array([model.probability(row) for row in rows[:100]])
        assert np.max(np.abs(single - expected[:100])) <= 1e-9


@pytest.mark.parametrize("name", ["logistic", "gbdt"])
def test_reasons_add_up_to_the_raw_score(result: TrainResult, name: str) -> None:
    model = serving_model(result, next(c for c in result.candidates if c.name == name))
    rows = result.test.x[:300]
    total = model.bias() + model.contributions_many(rows).sum(axis=1)
    assert np.max(np.abs(total - model.raw_many(rows))) <= 1e-9
    batch = model.risk_many(rows, result.artifact.thresholds)
    assert batch == [model.risk(row, result.artifact.thresholds) for row in rows]


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
    assert len(checks) == 7 and all(checks.values())  # the shipped baseline passes them all
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
