"""Training the risk model: events -> features (through the serving code) -> scikit-learn
models compared -> calibration -> thresholds -> a JSON artifact plus manifest.

``make train``, ``python -m service train`` and ``notebooks/train_risk_model.ipynb`` all call
``train``: nothing is defined twice. The data are simulated (``service.simulate``; no
labelled public data set of device-intelligence events exists) or exported from a running
service (``python -m service export-training``). Features come from replaying the events in
time order through ``Scorer.features_in`` with an in-memory reuse store: the very code and
window semantics that serve the model.

Split by time (train, then calibration, then test: the held-out last days). A logistic
model (no negative weights: every feature is oriented so that larger = riskier), a
gradient-boosted one and a histogram gradient-boosted one increasing in every feature (the
trees' counterpart of the sign constraint) are fitted on the training days, each
calibrated on the calibration days (Platt's sigmoid, or isotonic). Thresholds come from the
calibration days: block where blocked traffic is almost all fraud and each blocked event
more likely fraud than not; review where the review band fits the analysts' capacity and is
worth their time (a minimum share of fraud in it, never an event under a few per cent).

Every candidate is finished as if it were to serve (its own thresholds, artifact and
promotion-gate verdicts, see ``finish_candidate``) before one is chosen, because only a
model that passes the gate can serve: the choice by calibration-day average precision (the
cheaper one to serve wins unless the other is better by ``selection_margin``) is made among
the candidates that pass every story, and among all of them only when none does (then
nothing is promoted). The test days never decide anything; every candidate's test-day
metrics are recorded so that the choice can be checked against them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import sklearn
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import KFold

from service import __version__
from service.baseline_model import build_baseline, prior_weights
from service.decode import decode_event
from service.features import FeatureSpec
from service.identifiers import IdentifierPolicy
from service.lists import AccessLists
from service.model import (
    ARTIFACT_FORMAT,
    Artifact,
    FeatureSpecRef,
    Gbdt,
    IsotonicCalibration,
    Logistic,
    Manifest,
    RiskModel,
    SigmoidCalibration,
    Thresholds,
    Tree,
    Vector,
    save,
)
from service.observation import Observation
from service.reuse_memory import MemoryReuseStore
from service.scoring import Scorer
from service.settings import Settings

Matrix = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


class TrainingConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int = 7
    days: int = 14
    scale: float = 1.0
    train_share: float = 0.7  # of the time span; the calibration days follow, then test
    calibration_share: float = 0.15
    # Operating thresholds, chosen on the calibration days (see ``choose_thresholds``).
    block_precision: float = 0.95  # blocked traffic (score >= block) is at least this much fraud
    block_floor: int = 50  # never block under this score: blocked = more likely fraud than not
    review_rate: float = 0.05  # analysts' capacity: the review band's share of all traffic
    review_precision: float = 0.2  # at least one in five events in the review band is fraud
    review_floor: int = 5  # never review an event the model gives under a 5 % fraud chance
    # Model selection (see ``select_candidate``): a candidate that costs more to serve must
    # beat a cheaper one by more than this much average precision on the calibration days.
    selection_margin: float = 0.01
    # The logistic weights' prior: normal around the published weights with this standard
    # deviation, in logits (see ``fit_logistic``). 1 logit is ~3.6 Suspect Score points:
    # a prior that says where to start, which a few hundred telling rows override.
    logistic_prior_sd: float = 1.0
    # Every feature is oriented so that larger = riskier: the logistic model may not learn a
    # negative weight (see ``fit_logistic``); False (``--allow-negative-weights``) lets it.
    non_negative: bool = True
    gbdt_trees: int = 150
    gbdt_depth: int = 3
    gbdt_learning_rate: float = 0.1
    # HistGradientBoostingClassifier, increasing in every feature (see ``fit_hgb``).
    # The best calibration-day average precision (0.9761) among 58 settings tried on seed 7
    # with depth at most 8 (depth is what a served row costs: one numpy step per level);
    # one unbounded setting (depth 22) scored 0.0001 more, and all 58 lie within 0.005
    # (depth 1-8 or unbounded, 2-31 leaves, learning rate 0.05 / 0.1, 100-600 trees, L2
    # 0-10, leaves of 5-100 rows, feature subsampling; see models/README.md).
    hgb_iterations: int = 400
    hgb_learning_rate: float = 0.05
    hgb_max_leaf_nodes: int = 31
    hgb_max_depth: int | None = 8
    hgb_min_samples_leaf: int = 20
    hgb_l2_regularization: float = 1.0
    hgb_max_features: float = 1.0  # share of the features each split may choose from
    # Platt's sigmoid by default: on the simulated test days isotonic fitted the calibration
    # days closer but generalised worse (log loss 0.135 against 0.047).
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"


@dataclass
class Dataset:
    x: Matrix
    y: Labels
    times: npt.NDArray[np.int64]
    populations: list[str]
    request_ids: list[str]

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: npt.NDArray[np.bool_]) -> Dataset:
        index = np.flatnonzero(mask)
        return Dataset(
            self.x[index],
            self.y[index],
            self.times[index],
            [self.populations[i] for i in index],
            [self.request_ids[i] for i in index],
        )

    def digest(self) -> str:
        """sha256 of the feature matrix and labels: what the model was fitted on."""
        return hashlib.sha256(self.x.tobytes() + self.y.tobytes()).hexdigest()


@dataclass
class Candidate:
    name: str
    estimator: Any  # the fitted scikit-learn pipeline / ensemble
    calibrated: CalibratedClassifierCV
    artifact_model: Logistic | Gbdt
    calibration: SigmoidCalibration | IsotonicCalibration
    validation: dict[str, float] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)  # feature columns held at weight 0


@dataclass
class Finished:
    """A candidate made ready to serve on its own terms, so that the gate can judge it.

    The gate judges a served model, thresholds included, and each candidate's thresholds
    come from its own calibration scores: a candidate cannot be judged, nor chosen for
    serving, before it is finished.
    """

    candidate: Candidate
    artifact: Artifact
    model: RiskModel
    acceptance: dict[str, bool]
    metrics: dict[str, Any]  # recorded in the manifest, under metrics["candidates"][name]

    @property
    def passes_gate(self) -> bool:
        return bool(self.acceptance) and all(self.acceptance.values())


Selection = Literal["passing", "all"]  # the candidates the choice was made among


@dataclass
class TrainResult:
    artifact: Artifact
    manifest: Manifest
    model: RiskModel
    acceptance: dict[str, bool]
    chosen: Candidate
    candidates: list[Candidate]
    train: Dataset
    calibration: Dataset
    test: Dataset
    spec: FeatureSpec
    finished: list[Finished] = field(default_factory=list)  # every candidate, cheapest first
    selection: Selection = "all"


def featurize(
    events: Iterable[tuple[bytes, int, str]], spec: FeatureSpec, settings: Settings
) -> Dataset:
    """Replay (body, label, population) events in order through the serving feature path."""
    store = MemoryReuseStore(
        windows_ms=settings.reuse_windows_ms,
        cap=settings.reuse_cap,
        ipqs_window_ms=settings.ipqs_join_window_s * 1000,
    )
    artifact, manifest = build_baseline()
    scorer = Scorer(
        # Hashes only need to be consistent within the replay: any key does.
        policy=IdentifierPolicy(b"riskwire-training", settings.blocked_identifiers),
        store=None,
        spec=spec,
        model=RiskModel(artifact, spec, manifest),
        thresholds=artifact.thresholds,
        lists=AccessLists(Settings()),
    )
    rows: list[list[float]] = []
    labels: list[int] = []
    times: list[int] = []
    populations: list[str] = []
    request_ids: list[str] = []
    epoch = datetime.fromtimestamp(0, UTC)
    for body, label, population in events:
        obs = decode_event(body, received_at=epoch)
        rows.append(scorer.features_in(store, obs))
        labels.append(label)
        times.append(int(obs.time.timestamp() * 1000))
        populations.append(population)
        request_ids.append(obs.request_id)
    return Dataset(
        np.array(rows, dtype=np.float64) if rows else np.zeros((0, len(spec))),
        np.asarray(labels, dtype=np.int64),
        np.asarray(times, dtype=np.int64),
        populations,
        request_ids,
    )


def simulated_dataset(config: TrainingConfig, spec: FeatureSpec, settings: Settings) -> Dataset:
    from service.simulate import SimulationConfig, simulate

    sim = SimulationConfig(seed=config.seed, days=config.days, scale=config.scale)
    events = ((e.body, int(e.label == "fraud"), e.population) for e in simulate(sim))
    return featurize(events, spec, settings)


class TrainingDataError(ValueError):
    """A training file that cannot be trained on, with where and why."""


def load_exported(path: Path, spec: FeatureSpec) -> Dataset:
    """A training file of ``python -m service export-training`` (labelled rows only)."""
    from service.labels import TrainingRow

    decoder = msgspec.json.Decoder(TrainingRow)
    rows = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(decoder.decode(line))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError included
            raise TrainingDataError(f"{path}, line {number}: {exc}") from None
    rows = [row for row in rows if row.label in (0, 1)]
    if not rows:
        raise TrainingDataError(f"{path} holds no row labelled fraud or legit")
    mismatched = {row.feature_spec_hash for row in rows} - {spec.hash}
    if mismatched:
        raise TrainingDataError(
            f"{path} holds features of another feature spec: {sorted(mismatched)}"
        )
    rows.sort(key=lambda row: row.time)
    return Dataset(
        np.asarray([row.features for row in rows], dtype=np.float64).reshape(-1, len(spec)),
        np.asarray([row.label for row in rows], dtype=np.int64),
        np.asarray([row.time for row in rows], dtype=np.int64),
        [row.label_name for row in rows],
        [row.request_id for row in rows],
    )


def split_by_time(data: Dataset, config: TrainingConfig) -> tuple[Dataset, Dataset, Dataset]:
    start, end = int(data.times.min()), int(data.times.max())
    train_end = start + (end - start) * config.train_share
    calibration_end = train_end + (end - start) * config.calibration_share
    return (
        data.take(data.times < train_end),
        data.take((data.times >= train_end) & (data.times < calibration_end)),
        data.take(data.times >= calibration_end),
    )


def _calibrate(
    estimator: Any, calibration: Dataset, config: TrainingConfig
) -> CalibratedClassifierCV:
    """Calibration of a fitted estimator on the calibration days (one calibrator).

    A frozen estimator's cross-validated predictions are its plain predictions, so the fold
    count does not matter; two unstratified folds avoid warnings on rare classes.
    """
    calibrated = CalibratedClassifierCV(
        FrozenEstimator(estimator), method=config.calibration, cv=KFold(2)
    )
    return calibrated.fit(calibration.x, calibration.y)


def _calibration_of(calibrated: CalibratedClassifierCV) -> SigmoidCalibration | IsotonicCalibration:
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    if calibrated.method == "isotonic":
        return IsotonicCalibration(
            x=[float(v) for v in calibrator.X_thresholds_],
            y=[float(v) for v in calibrator.y_thresholds_],
        )
    return SigmoidCalibration(a=float(calibrator.a_), b=float(calibrator.b_))


class PriorLogistic(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Logistic regression pulled towards prior weights rather than towards zero.

    The maximum a posteriori fit under a Gaussian prior ``N(prior, prior_sd^2)`` on each
    weight (the intercept is free), optionally with every weight kept >= 0: L-BFGS-B on
    ``sum(log(1 + exp(z)) - y z) + |w - prior|^2 / (2 prior_sd^2)``, ``z = b + x . w``, on
    the features as they are (no scaling), so the fitted weights are the served ones.
    Deterministic: the same rows always give the same weights.
    """

    def __init__(
        self,
        prior: npt.NDArray[np.float64] | None = None,
        prior_sd: float = 1.0,
        non_negative: bool = True,
        start_intercept: float = 0.0,
    ) -> None:
        self.prior = prior
        self.prior_sd = prior_sd
        self.non_negative = non_negative
        self.start_intercept = start_intercept

    def fit(self, x: Matrix, y: Labels) -> PriorLogistic:
        features = np.asarray(x, dtype=np.float64)
        target = np.asarray(y, dtype=np.float64)
        prior = np.zeros(features.shape[1]) if self.prior is None else np.asarray(self.prior)
        precision = 1.0 / self.prior_sd**2

        def objective(theta: Vector) -> tuple[float, Vector]:
            z = theta[0] + features @ theta[1:]
            error = expit(z) - target
            pull = theta[1:] - prior
            value = float(np.sum(np.logaddexp(0.0, z) - target * z) + 0.5 * precision * pull @ pull)
            return value, np.concatenate(([error.sum()], features.T @ error + precision * pull))

        bound = (0.0, None) if self.non_negative else (None, None)
        start = np.concatenate(([self.start_intercept], np.maximum(prior, 0.0)))
        fitted = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(None, None)] + [bound] * features.shape[1],
            options={"maxiter": 10_000},
        )
        if not fitted.success:
            raise RuntimeError(f"the logistic fit did not converge: {fitted.message}")
        self.intercept_ = float(fitted.x[0])
        self.coef_ = np.asarray(fitted.x[1:], dtype=np.float64)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, x: Matrix) -> Vector:
        result: Vector = self.intercept_ + np.asarray(x, dtype=np.float64) @ self.coef_
        return result

    def predict_proba(self, x: Matrix) -> Matrix:
        p = expit(self.decision_function(x))
        return np.column_stack((1.0 - p, p))

    def predict(self, x: Matrix) -> npt.NDArray[np.int64]:
        labels: npt.NDArray[np.int64] = (self.decision_function(x) > 0).astype(np.int64)
        return labels


def fit_logistic(
    train: Dataset, calibration: Dataset, config: TrainingConfig, prior: Sequence[float]
) -> Candidate:
    """Logistic regression starting from, and pulled towards, ``prior``: the published
    signal weights of the hand-set baseline (``service.baseline_model.prior_weights``); with
    ``config.non_negative``, no weight below 0.

    Every feature of ``service/features.py`` is oriented so that larger = riskier. A negative
    weight is then something the model learned from how the training traffic happens to be
    mixed, not about risk: on the simulator's data, where legitimate privacy users are the
    main VPN population and fraud rarely shows more than one device per account, an
    unconstrained fit gives VPN, relay, privacy settings and new devices on an account
    negative weights, so a fraudster's VPN or an account takeover's burst of devices would
    *lower* a score. The bound is part of the optimisation (L-BFGS-B), so the fit is the
    best non-negative model: the earlier active-set elimination (fit, drop every negative
    weight, refit) dropped a feature for good once any intermediate fit made it negative,
    and lost plain tampering that way.

    The prior (``N(published weight, logistic_prior_sd^2)`` per weight) is what the data
    are weighed against: a weight the traffic says little about (a combination of signals
    the training days never show, such as Tor with tampering and no bot) stays near the
    vendors' published weight instead of falling to zero, and plenty of evidence overrides
    it. Features left at exactly 0 are reported as dropped.
    """
    baseline, _ = build_baseline()
    assert isinstance(baseline.model, Logistic)
    estimator = PriorLogistic(
        prior=np.asarray(prior, dtype=np.float64),
        prior_sd=config.logistic_prior_sd,
        non_negative=config.non_negative,
        start_intercept=baseline.model.intercept,
    ).fit(train.x, train.y)
    calibrated = _calibrate(estimator, calibration, config)
    weights = estimator.coef_
    model = Logistic(intercept=estimator.intercept_, coefficients=[float(w) for w in weights])
    dropped = [int(i) for i in np.flatnonzero(weights == 0.0)]
    return Candidate(
        "logistic", estimator, calibrated, model, _calibration_of(calibrated), dropped=dropped
    )


def fit_gbdt(train: Dataset, calibration: Dataset, config: TrainingConfig) -> Candidate:
    ensemble = GradientBoostingClassifier(
        n_estimators=config.gbdt_trees,
        max_depth=config.gbdt_depth,
        learning_rate=config.gbdt_learning_rate,
        random_state=config.seed,
    ).fit(train.x, train.y)
    calibrated = _calibrate(ensemble, calibration, config)
    trees = []
    for stage in ensemble.estimators_[:, 0]:
        tree = stage.tree_
        trees.append(
            Tree(
                feature=[int(f) for f in tree.feature],
                threshold=[float(t) for t in tree.threshold],
                left=[int(n) for n in tree.children_left],
                right=[int(n) for n in tree.children_right],
                value=[float(v) for v in tree.value[:, 0, 0]],
            )
        )
    # The initial raw score (log-odds of the prior), recovered through public methods.
    probe = train.x[:1]
    leaves = sum(
        float(stage.predict(probe.astype(np.float32))[0]) for stage in ensemble.estimators_[:, 0]
    )
    init = float(ensemble.decision_function(probe)[0]) - config.gbdt_learning_rate * leaves
    model = Gbdt(init=init, learning_rate=config.gbdt_learning_rate, trees=trees)
    return Candidate("gbdt", ensemble, calibrated, model, _calibration_of(calibrated))


def fit_hgb(train: Dataset, calibration: Dataset, config: TrainingConfig) -> Candidate:
    """Histogram gradient boosting, increasing in every feature by construction.

    Every feature is oriented so that larger = riskier, so each gets the monotonic
    constraint +1: no tree can learn that more evidence of risk lowers a score, which the
    unconstrained ``fit_gbdt`` trees do wherever the training traffic's mix suggests it (and
    then fail the gate's "no signal or count lowers a clean visitor's score"). The
    constraint holds for the raw score; Platt's sigmoid ``1 / (1 + exp(a * raw + b))`` keeps
    it when ``a < 0``, as it is for any model that ranks fraud above legitimate traffic on
    the calibration days (the unit tests probe the calibrated probability). Early stopping is
    off and ``random_state`` fixed, so the same data always give the same trees. NaN
    features are refused (see ``export_hgb``); ``service/features.py`` never makes one.
    """
    if np.isnan(train.x).any():
        raise ValueError("training rows hold NaN features; the served trees refuse NaN")
    ensemble = HistGradientBoostingClassifier(
        max_iter=config.hgb_iterations,
        learning_rate=config.hgb_learning_rate,
        max_leaf_nodes=config.hgb_max_leaf_nodes,
        max_depth=config.hgb_max_depth,
        min_samples_leaf=config.hgb_min_samples_leaf,
        l2_regularization=config.hgb_l2_regularization,
        max_features=config.hgb_max_features,
        monotonic_cst=[1] * train.x.shape[1],
        categorical_features=None,
        early_stopping=False,
        random_state=config.seed,
    ).fit(train.x, train.y)
    calibrated = _calibrate(ensemble, calibration, config)
    return Candidate("hgb", ensemble, calibrated, export_hgb(ensemble), _calibration_of(calibrated))


def export_hgb(ensemble: HistGradientBoostingClassifier) -> Gbdt:
    """A fitted binary ``HistGradientBoostingClassifier`` as a ``Gbdt`` artifact model.

    scikit-learn keeps the trees in private attributes (``_predictors``: one
    ``TreePredictor`` per iteration, its ``nodes`` a record array of
    ``PREDICTOR_RECORD_DTYPE``, depth-first with the root at 0; ``_baseline_prediction``:
    the initial raw score); ``finish_candidate`` checks the exported model against
    ``predict_proba``, so a change there fails training instead of serving something else.

    raw = baseline + sum of leaf values (the learning rate is already in the leaves, so
    ``learning_rate`` is 1), each split ``x <= num_threshold`` in float64. Inner nodes'
    ``value`` in scikit-learn is the unshrunk Newton step of the node, on another scale
    than the leaves; the path attribution needs inner values consistent with the leaves
    below, so each inner node gets the count-weighted mean of its children (of the leaves
    under it), and bias + contributions telescope to the raw score exactly.

    Missing values are not exported: scikit-learn sends a NaN to the child that saw more
    training rows when none was seen in training (``missing_go_to_left``; grower.py), a
    direction nobody chose, and the served model refuses NaN features instead
    (``fit_hgb`` refuses NaN in training rows). Categorical splits are refused.
    """
    if ensemble.n_trees_per_iteration_ != 1:
        raise ValueError("only a binary HistGradientBoostingClassifier exports to Gbdt")
    trees = []
    for (predictor,) in ensemble._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        if (nodes["is_categorical"][~leaf]).any():
            raise ValueError("categorical splits do not export to Gbdt")
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        count = nodes["count"].astype(np.float64)
        value = np.where(leaf, nodes["value"], 0.0)
        for n in range(len(nodes) - 1, -1, -1):  # children come after their parent
            if not leaf[n]:
                lo, hi = left[n], right[n]
                value[n] = (count[lo] * value[lo] + count[hi] * value[hi]) / (count[lo] + count[hi])
        trees.append(
            Tree(
                feature=np.where(leaf, -2, nodes["feature_idx"]).tolist(),
                threshold=np.where(leaf, -2.0, nodes["num_threshold"]).tolist(),
                left=left.tolist(),
                right=right.tolist(),
                value=value.tolist(),
            )
        )
    init = float(np.asarray(ensemble._baseline_prediction).ravel()[0])
    return Gbdt(init=init, learning_rate=1.0, trees=trees, compare_as="float64")


def evaluate(probability: Matrix, y: Labels) -> dict[str, float]:
    if len(set(y.tolist())) < 2:
        return {"rows": float(len(y))}
    return {
        "rows": float(len(y)),
        "fraud_share": round(float(y.mean()), 6),
        "roc_auc": round(float(roc_auc_score(y, probability)), 6),
        "average_precision": round(float(average_precision_score(y, probability)), 6),
        "brier": round(float(brier_score_loss(y, probability)), 6),
        "log_loss": round(float(log_loss(y, np.clip(probability, 1e-12, 1 - 1e-12))), 6),
    }


def choose_thresholds(
    scores: npt.NDArray[np.int64], y: Labels, config: TrainingConfig
) -> Thresholds:
    """Review and block thresholds from calibrated scores (0-100) and labels of held-out days.

    - **block**: the lowest score, not under ``block_floor``, from which blocked traffic
      (score >= block) is at least ``block_precision`` fraud; 100 if none is.
    - **review**: the lowest score, not under ``review_floor``, whose review band
      (review <= score < block) holds at most ``review_rate`` of all traffic *and* is at least
      ``review_precision`` fraud; if none is, review = block and nothing is sent to review.

    The scores are calibrated probabilities, so the floors read as probabilities: an event
    under 5 % is never worth an analyst, one under 50 % is never blocked. Without the
    precision and floor terms, a model whose scores are bimodal (almost every legitimate event
    at 0-1, the fraud at 60-100) would review everything from 1 %: a queue of which ~98 % is
    legitimate, capped only by capacity.

    Any threshold inside a gap of the calibration scores selects the same traffic, so each is
    then moved to the middle of its gap (never under its floor, and the review threshold never
    past the block threshold) instead of riding on the edge of the data; the calibration days'
    bands stay exactly as chosen.
    """

    def precision_from(threshold: int) -> float:
        chosen = scores >= threshold
        return float(y[chosen].mean()) if chosen.any() else 1.0

    def centred(threshold: int, ceiling: int = 101) -> int:
        """The middle of the gap in the scores that holds ``threshold``; a review threshold's
        gap ends at the block threshold (``ceiling``) at the latest."""
        below = scores[scores < threshold]
        above = scores[(scores >= threshold) & (scores < ceiling)]
        top = int(above.min()) if len(above) else ceiling
        if not len(below) or top > 100:
            return threshold
        return int(np.ceil((int(below.max()) + 1 + top) / 2))

    def band_ok(review: int, block: int) -> bool:
        band = (scores >= review) & (scores < block)
        if not band.any():
            return True  # no review band: nothing to fill, nothing wasted
        return (
            float(band.mean()) <= config.review_rate
            and float(y[band].mean()) >= config.review_precision
        )

    lowest_block = max(1, config.block_floor)
    block = next(
        (t for t in range(lowest_block, 101) if precision_from(t) >= config.block_precision), 100
    )
    block = max(centred(block), lowest_block)
    lowest_review = min(max(1, config.review_floor), block)
    review = next(t for t in range(lowest_review, block + 1) if band_ok(t, block))
    review = min(max(centred(review, block), lowest_review), block)
    return Thresholds(review=review, block=block)


def select_candidate(candidates: Sequence[Candidate], margin: float) -> Candidate:
    """The cheapest candidate to serve whose calibration-day average precision is within
    ``margin`` of the best one's (``candidates`` come cheapest first).

    Serving cost is real: one row costs the logistic model's numpy path ~2 us, the 150
    depth-3 trees of ``fit_gbdt`` ~17 us and the 400 depth-8 trees of ``fit_hgb`` ~45 us
    (their reasons several times that), and a logistic model's reasons are exact
    per-feature terms. ``margin`` prices that: 0 picks the
    highest average precision, whatever it costs. It is a judgment, not a significance test
    (see models/README.md for the gap it decided on the default data).
    """

    def ap(candidate: Candidate) -> float:
        return candidate.validation.get("average_precision", 0.0)

    best = max(ap(c) for c in candidates)
    return next(c for c in candidates if ap(c) >= best - margin)


def select_servable(finished: Sequence[Finished], margin: float) -> tuple[Finished, Selection]:
    """``select_candidate`` among the candidates that pass every gate story, or among all of
    them if none does, and which of the two it was.

    A fraud team wants the best model that is safe to serve, not the best model that cannot
    be served: a candidate that fails a story is never promoted, so choosing it over one
    that passes would leave the hand-set baseline serving for nothing. When none passes,
    the best candidate is still chosen, so that ``trained-model.json`` records it (and
    ``main`` promotes nothing).
    """
    passing = [f for f in finished if f.passes_gate]
    pool: Sequence[Finished] = passing or finished
    chosen = select_candidate([f.candidate for f in pool], margin)
    return next(f for f in pool if f.candidate is chosen), "passing" if passing else "all"


def operating_point(
    scores: npt.NDArray[np.int64], y: Labels, thresholds: Thresholds
) -> dict[str, float]:
    flagged = scores >= thresholds.review
    blocked = scores >= thresholds.block
    review = flagged & ~blocked
    frauds = max(int(y.sum()), 1)
    return {
        "flagged_share": round(float(flagged.mean()), 6),
        "blocked_share": round(float(blocked.mean()), 6),
        "review_share": round(float(review.mean()), 6),
        "flagged_precision": round(float(y[flagged].mean()) if flagged.any() else 0.0, 6),
        "flagged_recall": round(float(y[flagged].sum()) / frauds, 6),
        "blocked_precision": round(float(y[blocked].mean()) if blocked.any() else 0.0, 6),
        "blocked_recall": round(float(y[blocked].sum()) / frauds, 6),
        "review_precision": round(float(y[review].mean()) if review.any() else 0.0, 6),
    }


def by_population(scores: npt.NDArray[np.int64], data: Dataset) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    populations = np.asarray(data.populations)
    for name in sorted(set(data.populations)):
        chosen = scores[populations == name]
        table[name] = {
            "rows": float(len(chosen)),
            "fraud": float(data.y[populations == name].mean()),
            "mean_score": round(float(chosen.mean()), 3),
            "median_score": float(np.median(chosen)),
        }
    return table


def to_scores(probability: Matrix) -> npt.NDArray[np.int64]:
    return np.rint(100 * probability).astype(np.int64)


def train(
    config: TrainingConfig,
    data: Dataset | None = None,
    settings: Settings | None = None,
    source: str = "simulated",
) -> TrainResult:
    settings = settings or Settings()
    spec = FeatureSpec(settings.reuse_window_labels)
    data = data if data is not None else simulated_dataset(config, spec, settings)
    train_set, calibration_set, test_set = split_by_time(data, config)
    candidates = [  # cheapest to serve first: see select_candidate
        fit_logistic(train_set, calibration_set, config, prior_weights(spec)),
        fit_gbdt(train_set, calibration_set, config),
        fit_hgb(train_set, calibration_set, config),
    ]
    digest = data.digest()
    finished = [
        finish_candidate(c, calibration_set, test_set, spec, config, digest) for c in candidates
    ]
    best, selection = select_servable(finished, config.selection_margin)
    chosen, artifact = best.candidate, best.artifact
    version, thresholds, ref = artifact.model_version, artifact.thresholds, artifact.feature_spec
    baseline_artifact, baseline_manifest = build_baseline()
    baseline = RiskModel(baseline_artifact, spec, baseline_manifest)
    # The chosen model's own figures stay at the top level (what the artifact is); every
    # candidate's, chosen or not, are under "candidates".
    metrics: dict[str, Any] = {
        "chosen": chosen.name,
        "selection": {
            "rule": selection,
            "passing": [f.candidate.name for f in finished if f.passes_gate],
            "margin": config.selection_margin,
        },
        "logistic_dropped_features": [
            spec.names[i] for c in candidates if c.name == "logistic" for i in c.dropped
        ],
        "validation": {c.name: c.validation for c in candidates},
        **{
            key: best.metrics[key]
            for key in (
                "calibration_operating_point",
                "test",
                "test_operating_point",
                "test_by_population",
            )
        },
        "baseline_model_on_test": evaluate(baseline.predict_proba(test_set.x), test_set.y),
        "acceptance": best.acceptance,
        "candidates": {f.candidate.name: f.metrics for f in finished},
    }
    manifest = Manifest(
        model_version=version,
        created_at=datetime.now(UTC),
        description=(
            f"{chosen.name} model, {type(chosen.calibration).__name__}, trained on {source} "
            "events; "
            "see models/README.md for what that means and what it does not."
        ),
        artifact_sha256="",  # set by model.save from the written bytes
        feature_spec=ref,
        thresholds=thresholds,
        library_versions={
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "msgspec": msgspec.__version__,
            "riskwire": __version__,
        },
        training_data={
            "source": source,
            "config": msgspec.to_builtins(config),
            "rows": len(data),
            "sha256": digest,
            "train_rows": len(train_set),
            "calibration_rows": len(calibration_set),
            "test_rows": len(test_set),
            "fraud_share": round(float(data.y.mean()), 6),
        },
        metrics=metrics,
    )
    return TrainResult(
        artifact,
        manifest,
        best.model,
        best.acceptance,
        chosen,
        candidates,
        train_set,
        calibration_set,
        test_set,
        spec,
        finished,
        selection,
    )


def finish_candidate(
    candidate: Candidate,
    calibration: Dataset,
    test: Dataset,
    spec: FeatureSpec,
    config: TrainingConfig,
    data_digest: str,
) -> Finished:
    """Everything a candidate would serve with, and the gate's verdict on it.

    Each candidate gets thresholds from its own calibration scores (scores of different
    models do not mean the same), so that the gate judges it as it would serve, and its
    test-day figures are kept whether or not it is chosen: the manifest then shows what the
    choice gave up.
    """
    probability = candidate.calibrated.predict_proba(calibration.x)[:, 1]
    candidate.validation = evaluate(probability, calibration.y)
    calibration_scores = to_scores(probability)
    thresholds = choose_thresholds(calibration_scores, calibration.y, config)
    ref = FeatureSpecRef(spec.version, spec.hash, list(spec.names))
    # Data digest and a digest of what was fitted: two different models never share a
    # version, and the same training run always gives the same one.
    fitted = msgspec.json.encode((candidate.artifact_model, candidate.calibration, thresholds))
    fitted_digest = hashlib.sha256(fitted).hexdigest()
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        model_version=f"{candidate.name}-sim{config.seed}-{data_digest[:8]}-{fitted_digest[:8]}",
        feature_spec=ref,
        model=candidate.artifact_model,
        calibration=candidate.calibration,
        thresholds=thresholds,
    )
    model = RiskModel(artifact, spec)
    # The artifact is what serves: it must be the fitted model (an exporter reading
    # another library version's private attributes wrong fails here, not in production).
    served = model.predict_proba(calibration.x)
    gap = float(np.max(np.abs(served - probability), initial=0.0))
    if gap > 1e-9:
        raise RuntimeError(f"{candidate.name}: the exported model is off by {gap:.1e}")
    test_probability = model.predict_proba(test.x)
    test_scores = to_scores(test_probability)
    acceptance = acceptance_checks(model, thresholds, spec)
    metrics: dict[str, Any] = {
        "model_version": artifact.model_version,
        "passes_gate": all(acceptance.values()),
        "acceptance": acceptance,
        "thresholds": msgspec.to_builtins(thresholds),
        "dropped_features": [spec.names[i] for i in candidate.dropped],
        "validation": candidate.validation,
        "calibration_operating_point": operating_point(
            calibration_scores, calibration.y, thresholds
        ),
        "test": evaluate(test_probability, test.y),
        "test_operating_point": operating_point(test_scores, test.y, thresholds),
        "test_by_population": by_population(test_scores, test),
    }
    return Finished(candidate, artifact, model, acceptance, metrics)


def acceptance_checks(
    model: RiskModel, thresholds: Thresholds, spec: FeatureSpec
) -> dict[str, bool]:
    """The fraud analyst's stories a model must tell before it serves (a promotion gate).

    Metrics on simulated days say how well a model separates the simulator's populations;
    these say whether it still behaves on the cases every analyst knows the answer to.
    """
    from service.observation import IpqsSignals, Observation, Signals
    from service.reuse import RELATION_NAMES, ReuseSnapshot

    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    day_ms = 86_400_000
    clean = Observation(
        source="fingerprint_v3",
        request_id="acceptance",
        visitor_id="acceptance",
        time=now,
        visitor_found=True,
        confidence=0.99,
        incognito=False,
        first_seen_at=datetime(2025, 6, 1, tzinfo=UTC),
        signals=Signals(bot=False, vpn=False, proxy=False, tor=False, tampering=False),
    )

    def reuse(**counts: int) -> ReuseSnapshot:
        base: dict[str, tuple[int, ...]] = {name: (1, 1, 1) for name in RELATION_NAMES}
        base |= {name: (n, n, n) for name, n in counts.items()}
        return ReuseSnapshot.of(base, int(now.timestamp() * 1000) - 400 * day_ms)

    def vector(
        obs: Observation, snapshot: ReuseSnapshot, ipqs: IpqsSignals | None = None
    ) -> npt.NDArray[np.float64]:
        from service.features import FeatureInput

        return spec.vector(FeatureInput(obs, snapshot, ipqs, now))

    def score(obs: Observation, snapshot: ReuseSnapshot, ipqs: IpqsSignals | None = None) -> int:
        return model.risk(vector(obs, snapshot, ipqs), thresholds).score

    hostile = msgspec.structs.replace(
        clean, signals=Signals(tor=True, bot=True, tampering=True, proxy=False, vpn=False)
    )
    # A person, not a bot, hiding behind Tor in a tampered browser: the bot flag must not be
    # what carries the story above (a model can learn that from traffic where every Tor
    # user is also a bot).
    hidden = msgspec.structs.replace(
        clean, signals=Signals(tor=True, bot=False, tampering=True, proxy=False, vpn=False)
    )
    one_user, six_users = score(clean, reuse()), score(clean, reuse(users_per_device=6))
    family, ring = _replayed_devices(model, thresholds, spec, clean)
    return {
        "clean returning visitor is allowed": score(clean, reuse()) < thresholds.review,
        "Tor + bad bot + tampering is not allowed": score(hostile, reuse()) >= thresholds.review,
        "Tor + tampering without a bot is not allowed": score(hidden, reuse()) >= thresholds.review,
        "six users on a device outscore one": six_users > one_user,
        "six visits of one user in an hour are not blocked": score(
            clean, reuse(events_per_device=6, events_per_user=6, events_per_ip=6)
        )
        < thresholds.block,
        "IPQS fraud_chance 92 with recent abuse is not allowed": score(
            clean, reuse(), IpqsSignals(fraud_chance=92, recent_abuse=True)
        )
        >= thresholds.review,
        "replayed: a family device (one user, six visits in 45 min) is allowed": family
        < thresholds.review,
        "replayed: a ring device (six users in 45 min) is not allowed, and far above": ring
        >= thresholds.review
        and ring > family + 20,
        "no signal or count lowers a clean visitor's score": _nothing_lowers(
            model, spec, vector(clean, reuse())
        ),
    }


def _nothing_lowers(model: RiskModel, spec: FeatureSpec, base: npt.NDArray[np.float64]) -> bool:
    """Whether raising any one feature of ``base`` (flags to 1, fractions to 1, reuse counts
    to six distinct values) leaves its probability at least where it was: every feature is
    oriented so that larger = riskier, so evidence of risk may never earn a discount."""
    floor = model.probability(base) - 1e-12
    six = float(np.log1p(5))  # log1p(n - 1) for six distinct values
    for i, feature in enumerate(spec.features):
        raised = base.copy()
        raised[i] = max(raised[i], six if feature.kind.startswith("reuse:") else 1.0)
        if model.probability(raised) < floor:
            return False
    return True


def _replayed_devices(
    model: RiskModel, thresholds: Thresholds, spec: FeatureSpec, clean: Observation
) -> tuple[int, int]:
    """Scores of the sixth visit of a family device and of a ring device, each on its own IP,
    replayed through the in-memory reuse store as the service would have counted them."""
    from service.settings import parse_duration_ms

    store = MemoryReuseStore(
        windows_ms=[parse_duration_ms(label) for label in spec.window_labels],
        cap=1000,
        ipqs_window_ms=3_600_000,
    )
    scorer = Scorer(
        policy=IdentifierPolicy(b"acceptance"),
        store=None,
        spec=spec,
        model=model,
        thresholds=thresholds,
        lists=AccessLists(Settings()),
    )
    last: dict[str, int] = {}
    for n in range(6):
        for device, user, ip in (
            ("family", "parent-1", "203.0.113.9"),
            ("ring", f"mule-{n}", "203.0.113.10"),
        ):
            obs = msgspec.structs.replace(
                clean,
                request_id=f"{device}-{n}",
                visitor_id=f"{device}-device",
                user_id=user,
                ip=ip,
                time=clean.time + timedelta(minutes=9 * n),
            )
            last[device] = scorer.verdict(obs, scorer.features_in(store, obs)).score
    return last["family"], last["ring"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service train", description=__doc__)
    defaults = TrainingConfig()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--out", default="models/trained-model.json")
    parser.add_argument(
        "--promote-to",
        default="models/risk-model.json",
        help="where the model goes if it passes every acceptance check",
    )
    parser.add_argument(
        "--data", type=Path, help="a file from `export-training` instead of simulated traffic"
    )
    parser.add_argument(
        "--review-rate",
        type=float,
        default=defaults.review_rate,
        help="most of all traffic the review band may hold (analysts' capacity)",
    )
    parser.add_argument(
        "--review-precision",
        type=float,
        default=defaults.review_precision,
        help="least share of fraud in the review band",
    )
    parser.add_argument(
        "--block-precision",
        type=float,
        default=defaults.block_precision,
        help="least share of fraud in blocked traffic",
    )
    parser.add_argument(
        "--allow-negative-weights",
        action="store_true",
        help="let the logistic model weigh a risk feature negatively (default: it may not)",
    )
    parser.add_argument(
        "--selection-margin",
        type=float,
        default=defaults.selection_margin,
        help="average precision a costlier model must gain to be chosen (0: best AP wins)",
    )
    args = parser.parse_args(argv)
    config = TrainingConfig(
        seed=args.seed,
        days=args.days,
        scale=args.scale,
        review_rate=args.review_rate,
        review_precision=args.review_precision,
        block_precision=args.block_precision,
        selection_margin=args.selection_margin,
        non_negative=not args.allow_negative_weights,
    )
    settings = Settings.from_env(os.environ)
    if args.data:
        if not args.data.is_file():
            parser.error(f"--data {args.data}: no such file")
        spec = FeatureSpec(settings.reuse_window_labels)
        try:
            data = load_exported(args.data, spec)
        except TrainingDataError as exc:
            print(exc, file=sys.stderr)
            return 1
        result = train(config, data, settings, source=f"exported labels ({args.data.name})")
    else:
        result = train(config, settings=settings)
    out = Path(args.out)
    save(result.artifact, result.manifest, out)
    metrics = result.manifest.metrics
    print(msgspec.json.format(msgspec.json.encode(metrics), indent=2).decode())
    print(f"wrote {out} ({result.artifact.model_version})")
    passing = [f.candidate.name for f in result.finished if f.passes_gate]
    print(
        f"chose {result.chosen.name} among "
        + (f"the candidates passing every story ({', '.join(passing)})" if passing else "all")
    )
    failed = [name for name, ok in result.acceptance.items() if not ok]
    if failed:
        print(f"NOT promoted to {args.promote_to}; failed acceptance checks: {failed}")
        return 0
    save(result.artifact, result.manifest, Path(args.promote_to))
    print(f"passed every acceptance check: promoted to {args.promote_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
