"""The feature spec, the JSON model artifact and the reasons it gives."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from service.app import DEFAULT_MODEL
from service.baseline_model import BASELINE_WINDOWS, build_baseline
from service.features import FeatureInput, FeatureSpec
from service.model import (
    ARTIFACT_FORMAT,
    Artifact,
    FeatureSpecRef,
    Gbdt,
    Logistic,
    ModelError,
    Risk,
    RiskModel,
    Thresholds,
    Tree,
    manifest_path,
    save,
    shown,
)
from service.observation import IpqsSignals, Observation, Signals
from service.reuse import RELATION_NAMES, ReuseSnapshot

SPEC = FeatureSpec(BASELINE_WINDOWS)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BASELINE_PATH = DEFAULT_MODEL.with_name("baseline-model.json")
# These tests pin the hand-set baseline's published-weight behaviour; the trained model
# (models/risk-model.json) is checked by the scenario tests and tests/unit/test_training.py.
MODEL = RiskModel.load(BASELINE_PATH, SPEC)
assert isinstance(MODEL.artifact.model, Logistic)
PARAMS = MODEL.artifact.model
THRESHOLDS = MODEL.artifact.thresholds


def reuse(**counts: tuple[int, ...]) -> ReuseSnapshot:
    base: dict[str, tuple[int, ...]] = {name: (1, 1, 1) for name in RELATION_NAMES}
    base.update(counts)
    return ReuseSnapshot.of(
        base, device_first_seen_ms=int(NOW.timestamp() * 1000) - 400 * 86_400_000
    )


def obs(**changes: object) -> Observation:
    base = Observation(
        source="fingerprint_v3",
        request_id="r",
        visitor_id="v",
        time=NOW,
        visitor_found=True,
        confidence=0.99,
        incognito=False,
        signals=Signals(bot=False, vpn=False, proxy=False, tor=False, tampering=False),
    )
    return msgspec.structs.replace(base, **changes)


def risk_of(
    o: Observation, r: ReuseSnapshot | None = None, ipqs: IpqsSignals | None = None
) -> tuple[Risk, npt.NDArray[np.float64]]:
    x = SPEC.vector(FeatureInput(o, r or reuse(), ipqs, NOW))
    return MODEL.risk(x, THRESHOLDS), x


def test_shipped_baseline_regenerates_and_loads_without_pickle(tmp_path: Path) -> None:
    regenerated = tmp_path / "model.json"
    save(*build_baseline(), regenerated)
    assert regenerated.read_bytes() == BASELINE_PATH.read_bytes()
    assert manifest_path(regenerated).read_bytes() == manifest_path(BASELINE_PATH).read_bytes()
    for path in (BASELINE_PATH, DEFAULT_MODEL):
        artifact = json.loads(path.read_bytes())  # plain JSON: nothing executes on load
        assert artifact["feature_spec"]["names"] == list(SPEC.names)
        assert artifact["feature_spec"]["hash"] == SPEC.hash
    assert RiskModel.load(DEFAULT_MODEL, SPEC).manifest is not None


def test_the_fast_feature_vector_matches_every_features_own_transform() -> None:
    import random

    rng = random.Random(4)
    flags = [name for name in Signals.__struct_fields__ if name != "suspect_score"]
    seen = np.zeros(len(SPEC))
    for _ in range(300):
        counts = tuple(rng.choice([0, 1, 2, 7, 40]) for _ in range(3))
        snapshot = reuse(**{name: counts for name in rng.sample(RELATION_NAMES, 4)})
        signals = Signals(
            **{name: rng.choice([True, False, None]) for name in flags},
            suspect_score=rng.choice([None, 0, 30, 250]),
        )
        ipqs = rng.choice(
            [None, IpqsSignals(fraud_chance=90, recent_abuse=True, bot_status=True, success=False)]
        )
        observed = obs(
            signals=signals,
            confidence=rng.choice([None, rng.random()]),
            visitor_found=rng.choice([True, False, None]),
            incognito=rng.choice([True, False, None]),
        )
        item = FeatureInput(observed, snapshot, ipqs, NOW)
        x = SPEC.vector(item)
        assert np.array_equal(x, SPEC.vector_slow(item))
        seen += x != 0
    # Every feature took a value other than 0 somewhere: none was compared only at 0.
    assert seen.all(), [name for name, n in zip(SPEC.names, seen, strict=True) if not n]


def test_artifacts_written_before_compare_as_load_and_encode_unchanged() -> None:
    for path in sorted(DEFAULT_MODEL.parent.glob("*.json")):
        if path.name.endswith(".manifest.json"):
            continue
        model = RiskModel.load(path, SPEC)
        # The same JSON again (no new key: a default is left out), so the same model digest.
        assert json.loads(msgspec.json.encode(model.artifact)) == json.loads(path.read_bytes())
    old = b'{"type": "gbdt", "init": -2.0, "learning_rate": 0.1, "trees": []}'
    decoded = msgspec.json.decode(old, type=Gbdt)
    assert decoded.compare_as == "float32"  # scikit-learn's DecisionTreeRegressor reads float32
    assert msgspec.json.encode(decoded) == old.replace(b": ", b":").replace(b", ", b",")


def _one_split(compare_as: str, threshold: float) -> RiskModel:
    """A one-tree model: raw -1 when low_confidence <= threshold, else +1."""
    tree = Tree(
        feature=[0, -2, -2],
        threshold=[threshold, -2.0, -2.0],
        left=[1, -1, -1],
        right=[2, -1, -1],
        value=[0.0, -1.0, 1.0],
    )
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        model_version="one-split",
        feature_spec=FeatureSpecRef(SPEC.version, SPEC.hash, list(SPEC.names)),
        model=Gbdt(init=0.0, learning_rate=1.0, trees=[tree], compare_as=compare_as),  # type: ignore[arg-type]
        thresholds=Thresholds(review=50, block=80),
    )
    return RiskModel(artifact, SPEC)


def test_trees_compare_features_in_the_precision_they_were_fitted_in() -> None:
    threshold = float(np.float32(0.1))
    row = np.zeros(len(SPEC))
    row[0] = threshold + 1e-12  # above the threshold, but equal to it once rounded to float32
    assert np.float32(row[0]) <= threshold < row[0]
    rows = np.vstack((row, np.zeros(len(SPEC))))
    histogram = _one_split("float64", threshold)  # HistGradientBoostingClassifier
    assert histogram.raw(row) == 1.0
    assert histogram.raw_many(rows).tolist() == [1.0, -1.0]
    assert histogram.contributions(row)[0] == 1.0 - histogram.bias()
    classic = _one_split("float32", threshold)  # GradientBoostingClassifier
    assert classic.raw(row) == -1.0
    assert classic.raw_many(rows).tolist() == [-1.0, -1.0]


def test_a_model_for_another_feature_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="windows 15m, 1h"):
        RiskModel.load(DEFAULT_MODEL, FeatureSpec(("15m", "1h")))
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"format": "pickle"}')
    with pytest.raises(ModelError, match="cannot load"):
        RiskModel.load(broken, SPEC)


def test_an_artifact_that_does_not_match_its_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save(*build_baseline(), path)
    tampered = path.read_bytes().replace(b'"intercept": -3.5', b'"intercept": -1.5')
    assert tampered != path.read_bytes()
    path.write_bytes(tampered)
    with pytest.raises(ModelError, match="sha256"):
        RiskModel.load(path, SPEC)


def test_spec_hash_changes_with_windows_and_is_stable() -> None:
    assert FeatureSpec(BASELINE_WINDOWS).hash == SPEC.hash
    assert FeatureSpec(("1h", "7d")).hash != SPEC.hash
    assert len(set(SPEC.names)) == len(SPEC.names)


def test_clean_confident_returning_visitor_scores_low() -> None:
    risk, _ = risk_of(obs())
    assert risk.score <= 10
    assert (risk.level, risk.action) == ("low", "allow")


def test_tor_bot_tampering_score_high_with_those_reasons_first() -> None:
    signals = Signals(tor=True, bot=True, tampering=True, proxy=False, vpn=False)
    risk, _ = risk_of(obs(signals=signals))
    assert risk.score >= 95
    assert (risk.level, risk.action) == ("high", "block")
    assert [r.code for r in risk.reasons[:3]] == ["TOR", "TAMPERING", "BOT"]


def test_reasons_are_the_models_own_contributions() -> None:
    risk, x = risk_of(obs(incognito=True, signals=Signals(vpn=True, relay=True)))
    coefficients = dict(zip(SPEC.names, PARAMS.coefficients, strict=True))
    values = dict(zip(SPEC.names, x, strict=True))
    for reason in risk.reasons:
        name = reason.code.lower()
        assert reason.contribution == pytest.approx(coefficients[name] * values[name], abs=1e-4)
    contributions = [r.contribution for r in risk.reasons]
    assert contributions == sorted(contributions, reverse=True)
    z = PARAMS.intercept + float(np.dot(PARAMS.coefficients, x))
    assert risk.score == round(100 / (1 + np.exp(-z)))


def test_ipqs_fraud_chance_follows_the_published_guidance() -> None:
    def score(chance: int) -> int:
        return risk_of(
            obs(confidence=None, visitor_found=None), ipqs=IpqsSignals(fraud_chance=chance)
        )[0].score

    assert score(25) <= 15  # the median device
    assert 50 <= score(75) < 80  # suspicious: review
    assert score(85) >= 80  # flag or block


def test_more_users_on_a_device_raise_the_score() -> None:
    one, _ = risk_of(obs(), reuse(users_per_device=(1, 1, 1)))
    six, _ = risk_of(obs(), reuse(users_per_device=(6, 6, 6)))
    assert six.score > one.score + 20
    assert six.reasons[0].code == "USERS_PER_DEVICE_1H"


def test_thresholds_classify_and_validate() -> None:
    thresholds = Thresholds(review=40, block=70)
    assert thresholds.classify(39) == ("low", "allow")
    assert thresholds.classify(40) == ("medium", "review")
    assert thresholds.classify(70) == ("high", "block")
    with pytest.raises(ValueError):
        Thresholds(review=80, block=50)


def test_reasons_ranked_for_many_rows_are_the_reasons_of_each_row() -> None:
    """Ties included: with every weight 1, the present features of a row all contribute
    alike, and ``risk`` lists them in feature order; so must the batch ranking."""
    flat = msgspec.structs.replace(
        MODEL.artifact, model=Logistic(intercept=-3.0, coefficients=[1.0] * len(SPEC))
    )
    rng = np.random.default_rng(3)
    rows = rng.choice([0.0, 0.0, 0.0, 0.5, 1.0, 2.0], size=(300, len(SPEC)))
    rows[:40] = 0.0  # no reason at all
    rows[20:40, :3] = 1.0  # fewer than five
    for model in (MODEL, RiskModel(flat, SPEC)):
        ranked, contributions = model.ranked_reasons(rows)
        expected = [model.risk(row, THRESHOLDS) for row in rows]
        codes = [f.reason_code for f in SPEC.features]
        assert [[codes[i] for i in r] for r in ranked] == [
            [reason.code for reason in risk.reasons] for risk in expected
        ]
        assert [[shown(float(contributions[n, i])) for i in r] for n, r in enumerate(ranked)] == [
            [reason.contribution for reason in risk.reasons] for risk in expected
        ]
        assert model.scores(rows) == [risk.score for risk in expected]
        assert {len(r) for r in ranked} == {0, 3, 5}


def test_reuse_counts_are_transformed_as_the_definition_says_past_the_lookup_table() -> None:
    """``row`` looks the reuse transform up in a table and computes it past the table's end;
    both must give numpy's ``log1p(max(n - 1, 0))`` exactly, as every feature's own
    ``compute`` and the batch path do (libm's ``log1p`` differs in the last bit for 3)."""
    width = len(BASELINE_WINDOWS)
    for start in (0, 990, 4090, 9000):
        counts = [start + n for n in range(len(RELATION_NAMES) * width)]
        item = FeatureInput(obs(), ReuseSnapshot(counts), None, NOW)
        row = SPEC.row(item)
        assert row == SPEC.vector_slow(item).tolist()
        assert row[-len(counts) :] == [float(np.log1p(max(n - 1, 0))) for n in counts]


def test_a_logistic_row_scores_as_its_numpy_definition_whether_list_or_array() -> None:
    """One row is scored in plain Python from the present features only: the score is
    numpy's ``coef @ x`` through the calibration, the reasons its largest positive
    ``coef * x`` (ties in feature order)."""
    rng = np.random.default_rng(11)
    rows = rng.choice([0.0, 0.0, 0.0, 0.25, 1.0, 3.0], size=(400, len(SPEC)))
    rows[:5] = 0.0
    coef = np.asarray(MODEL.artifact.model.coefficients)  # type: ignore[union-attr]
    codes = [f.reason_code for f in SPEC.features]
    for row in rows:
        as_list = MODEL.risk(row.tolist(), THRESHOLDS)
        assert as_list == MODEL.risk(row, THRESHOLDS)
        raw = MODEL.artifact.model.intercept + float(coef @ row)  # type: ignore[union-attr]
        assert abs(MODEL.raw(row.tolist()) - raw) < 1e-12
        contributions = coef * row
        order = sorted((-c, i) for i, c in enumerate(contributions.tolist()) if c > 0)[:5]
        assert [(r.code, r.contribution) for r in as_list.reasons] == [
            (codes[i], shown(-c)) for c, i in order
        ]


def _random_tree(rng: np.random.Generator, levels: int) -> Tree:
    """A tree of at most ``levels`` levels whose leaves sit at any level, the root included."""
    tree = Tree(feature=[], threshold=[], left=[], right=[], value=[])

    def grow(level: int) -> int:
        node = len(tree.feature)
        for column in (tree.feature, tree.threshold, tree.left, tree.right, tree.value):
            column.append(-2)
        tree.value[node] = float(rng.normal())
        if level < levels and rng.random() < 0.8:
            tree.feature[node] = int(rng.integers(len(SPEC)))
            tree.threshold[node] = float(rng.choice([0.0, 0.5, 1.0]))
            tree.left[node] = grow(level + 1)
            tree.right[node] = grow(level + 1)
        else:
            tree.feature[node] = tree.left[node] = tree.right[node] = -1
            tree.threshold[node] = -2.0
        return node

    grow(0)
    return tree


def _walked(trees: list[Tree], init: float, rate: float, row: list[float]) -> float:
    """The definition: each tree walked from its root, ``x <= threshold`` going left."""
    raw = init
    for tree in trees:
        node = 0
        while tree.left[node] >= 0:
            left = row[tree.feature[node]] <= tree.threshold[node]
            node = tree.left[node] if left else tree.right[node]
        raw += rate * tree.value[node]
    return raw


@pytest.mark.parametrize("levels", [0, 1, 2, 3, 4])
def test_shallow_and_deep_trees_score_as_walked_from_the_root(levels: int) -> None:
    rng = np.random.default_rng(levels)
    trees = [_random_tree(rng, levels) for _ in range(60)]
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        model_version="random-trees",
        feature_spec=FeatureSpecRef(SPEC.version, SPEC.hash, list(SPEC.names)),
        model=Gbdt(init=-1.5, learning_rate=0.1, trees=trees, compare_as="float64"),
        thresholds=Thresholds(review=50, block=80),
    )
    model = RiskModel(artifact, SPEC)
    # Features on the thresholds themselves and either side of them: every way down is taken.
    rows = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, 2.0], size=(200, len(SPEC)))
    expected = [_walked(trees, -1.5, 0.1, row) for row in rows.tolist()]
    assert np.allclose(model.raw_many(rows), expected, rtol=0, atol=1e-12)
    assert np.allclose([model.raw(row) for row in rows], expected, rtol=0, atol=1e-12)
    # A different leaf would move a raw score by far more than the tolerance, and past a
    # lone leaf the rows reach many (a root that is a leaf gives every row its value).
    assert len({round(value, 6) for value in expected}) > (100 if levels >= 2 else levels)


def test_a_contribution_is_shown_to_four_decimals_as_round_shows_it() -> None:
    """``shown`` is ``round(x, 4)`` but where ``x * 10**4`` is within a rounding error of a
    half; infinities, NaN and values too large to scale pass through (``math.floor`` would
    raise on them)."""
    rng = np.random.default_rng(8)
    values = np.concatenate(
        [rng.uniform(0, 5, 20_000), rng.uniform(-5, 0, 2_000), rng.exponential(1e-3, 2_000)]
    ).tolist()
    values += [0.0, 1.0, 0.00005, 0.12345, 2.5e-5, 3.99995]
    near_half = 0
    for x in values:
        scaled = x * 10_000
        if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
            near_half += 1
            assert abs(shown(x) - round(x, 4)) <= 1e-4 + 1e-12, x
        else:
            assert shown(x) == round(x, 4), x
    assert near_half < 20  # the exception is rare: the rest are held exactly
    assert shown(math.inf) == math.inf and shown(-math.inf) == -math.inf
    assert math.isnan(shown(math.nan))
    assert shown(1e305) == 1e305 == round(1e305, 4)  # x * 10**4 overflows: x as it is
