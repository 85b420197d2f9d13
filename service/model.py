"""The risk model: a JSON artifact plus manifest (nothing executes on load) and its fast
serving paths (numpy for many rows; a logistic model's single row in plain Python).

Two model kinds share one pipeline, ``raw score -> calibration -> probability``:

- ``logistic``: ``raw = intercept + coef . x``; a feature's contribution is ``coef_i * x_i``;
- ``gbdt``: a gradient-boosted tree ensemble, ``raw = init + lr * sum(leaf values)``; a
  feature's contribution is the sum, over the trees, of the node-value changes along the
  decision path at splits on that feature, so ``init + lr * sum(root values) +
  sum(contributions) = raw`` (path attribution, as in Saabas' method). Two scikit-learn
  ensembles export to it: ``GradientBoostingClassifier`` (its trees compare features as
  float32) and ``HistGradientBoostingClassifier`` (float64, the learning rate already in
  the leaves: ``learning_rate`` 1); ``compare_as`` says which, so the fast path matches
  ``predict_proba`` to 1e-9 for both. Tree ensembles refuse a NaN feature (ValueError):
  no feature is ever NaN, the models were fitted without any, and scikit-learn's own
  direction for one (the child that saw more training rows) is nobody's choice.

Calibration maps the raw score to a probability: plain sigmoid, Platt's sigmoid
(``1 / (1 + exp(a * raw + b))``) or isotonic (piecewise linear).

Score = round(100 * probability). Reasons are the model's own contributions (positive ones,
largest first), so a reason never disagrees with the score. Level and action come from two
thresholds on the score: the artifact's, unless settings override them.

The manifest records the artifact's sha256, the feature spec it was built for, library
versions, the training data and metrics; the server refuses a mismatch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime
from itertools import compress
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from service.features import FeatureSpec

ARTIFACT_FORMAT = "riskwire.model.v2"
MAX_REASONS = 5

Level = Literal["low", "medium", "high"]
Action = Literal["allow", "review", "block"]
Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]
Rows = npt.NDArray[np.floating[Any]]  # feature rows in a tree ensemble's comparison dtype
Row = Vector | list[float]  # one observation's features (``FeatureSpec.row`` gives a list)


class ModelError(RuntimeError):
    """The model artifact is unreadable or does not fit this server's feature spec."""


class Thresholds(msgspec.Struct, frozen=True):
    review: float
    block: float

    def __post_init__(self) -> None:
        if not 0 <= self.review <= self.block <= 100:
            raise ValueError("thresholds need 0 <= review <= block <= 100")

    def classify(self, score: float) -> tuple[Level, Action]:
        if score >= self.block:
            return "high", "block"
        if score >= self.review:
            return "medium", "review"
        return "low", "allow"


class FeatureSpecRef(msgspec.Struct, frozen=True):
    version: str
    hash: str
    names: list[str]


class Logistic(msgspec.Struct, frozen=True, tag="logistic"):
    intercept: float
    coefficients: list[float]


class Tree(msgspec.Struct, frozen=True):
    """Nodes in scikit-learn's order; a leaf has ``left == -1``."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]


class Gbdt(msgspec.Struct, frozen=True, tag="gbdt", omit_defaults=True):
    """``compare_as``: the precision a feature is rounded to before ``x <= threshold``
    (scikit-learn's ``DecisionTreeRegressor`` reads float32, the histogram trees float64).
    Its default is left out of the JSON, so artifacts written before it existed load, and
    encode, exactly as they did."""

    init: float
    learning_rate: float
    trees: list[Tree]
    compare_as: Literal["float32", "float64"] = "float32"


class NoCalibration(msgspec.Struct, frozen=True, tag="none"):
    pass


class SigmoidCalibration(msgspec.Struct, frozen=True, tag="sigmoid"):
    a: float
    b: float


class IsotonicCalibration(msgspec.Struct, frozen=True, tag="isotonic"):
    x: list[float]
    y: list[float]


Calibration = NoCalibration | SigmoidCalibration | IsotonicCalibration


class Artifact(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    model_version: str
    feature_spec: FeatureSpecRef
    model: Logistic | Gbdt
    calibration: Calibration = NoCalibration()
    thresholds: Thresholds


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    model_version: str
    created_at: datetime
    description: str
    artifact_sha256: str
    feature_spec: FeatureSpecRef
    thresholds: Thresholds
    library_versions: dict[str, str] = {}
    training_data: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


class Reason(msgspec.Struct, frozen=True):
    code: str
    contribution: float


def shown(contribution: float) -> float:
    """A contribution as answers show it, to four decimals: ``floor(x * 10**4 + 0.5)``
    ten-thousandths, the float nearest them. ``round(x, 4)`` gives the same float except
    where ``x * 10**4`` lies within a rounding error of a half (it rounds the exact value of
    ``x`` in decimal), and cost five times as much: 1.8 of the 5.7 us a logistic verdict
    took, for its five reasons. Every path that shows a contribution goes through here."""
    scaled = contribution * 10_000
    if not math.isfinite(scaled):  # NaN, an infinity, or past 1e304: no decimals to drop
        return contribution
    return math.floor(scaled + 0.5) / 10_000


class Risk(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    score: int
    level: Level
    action: Action
    reasons: list[Reason]
    model_version: str


_encoder = msgspec.json.Encoder()
_artifact_decoder = msgspec.json.Decoder(Artifact)
_manifest_decoder = msgspec.json.Decoder(Manifest)


def manifest_path(artifact_path: Path) -> Path:
    return artifact_path.with_name(artifact_path.stem + ".manifest.json")


def save(artifact: Artifact, manifest: Manifest, path: Path) -> None:
    """Write the artifact and its manifest; the manifest's sha256 is set from the bytes."""
    body = msgspec.json.format(_encoder.encode(artifact), indent=2) + b"\n"
    path.write_bytes(body)
    signed = msgspec.structs.replace(manifest, artifact_sha256=hashlib.sha256(body).hexdigest())
    manifest_path(path).write_bytes(msgspec.json.format(_encoder.encode(signed), indent=2) + b"\n")


class _Ensemble:
    """Trees padded into flat arrays so one row, or many, walk every tree at once.

    Node ``n`` of tree ``t`` is flat node ``i = t * width + n``, which owns two slots:
    ``2i`` (the way to its right child) and ``2i + 1`` (to its left child). A walk holds
    slots, so one step is ``children[slot + (x <= threshold[slot])]``, every per-node array
    stored once per slot and ``children`` holding the children's even slots. A leaf's
    children are itself, so a walk of ``depth`` steps ends on every tree's leaf without
    testing which nodes are inner; ``np.take`` on flat arrays is several times cheaper than
    2-D fancy indexing for the few hundred elements of one row. Rows are compared in
    ``dtype`` (the model's ``compare_as``): callers cast them with ``rows``.
    """

    def __init__(self, model: Gbdt, names: Sequence[str]) -> None:
        width = max(len(tree.feature) for tree in model.trees)
        count = len(model.trees)
        feature = np.zeros((count, width), dtype=np.intp)
        threshold = np.zeros((count, width), dtype=np.float64)
        left = np.tile(np.arange(width, dtype=np.intp), (count, 1))
        right = left.copy()
        value = np.zeros((count, width), dtype=np.float64)
        for t, tree in enumerate(model.trees):
            n = len(tree.feature)
            inner = np.asarray(tree.left[:n]) >= 0
            feature[t, :n] = np.where(inner, tree.feature, 0)
            threshold[t, :n] = tree.threshold
            left[t, :n] = np.where(inner, tree.left, np.arange(n))
            right[t, :n] = np.where(inner, tree.right, np.arange(n))
            value[t, :n] = tree.value
        offsets = (np.arange(count, dtype=np.intp) * width)[:, None]
        self.dtype = np.dtype(model.compare_as)
        self.names = names
        self.feature = np.repeat(feature.ravel(), 2)
        self.threshold = np.repeat(threshold.ravel(), 2)
        self.children = 2 * np.stack(((right + offsets).ravel(), (left + offsets).ravel()), axis=1)
        self.children = self.children.ravel()
        self.value = np.repeat(value.ravel(), 2)
        self.roots = 2 * offsets[:, 0]
        self.scaled = model.learning_rate * self.value
        self.depth = max(_depth(tree) for tree in model.trees)
        self.init = model.init
        self.rate = model.learning_rate
        self.coded = _CodedTrees(model) if model.trees and self.depth <= _CODED_DEPTH else None

    def rows(self, xs: Matrix) -> Rows:
        """``xs`` as the trees compare it (float32 copies, or float64 as it is); a NaN
        feature is refused. One row costs a dot product: x . x is NaN iff an x is."""
        missing = math.isnan(xs.dot(xs)) if xs.ndim == 1 else bool(np.isnan(xs).any())
        if missing:
            columns = np.flatnonzero(np.isnan(xs).reshape(-1, xs.shape[-1]).any(axis=0))
            raise ValueError(
                "NaN features (tree models refuse missing values): "
                + ", ".join(self.names[i] for i in columns.tolist())
            )
        return xs.astype(self.dtype, copy=False)

    def _step(self, xs: Rows, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """One level down every tree, for rows ``xs`` (n, features) at ``slots`` (n, trees)."""
        feature = self.feature.take(slots)
        seen = xs[0].take(feature) if xs.shape[0] == 1 else np.take_along_axis(xs, feature, axis=1)
        result: npt.NDArray[np.intp] = self.children.take(
            slots + (seen <= self.threshold.take(slots))
        )
        return result

    def leaves(self, xs: Rows) -> npt.NDArray[np.intp]:
        """Leaf slot per (row, tree) for rows ``xs`` of shape (n, features)."""
        slots = np.broadcast_to(self.roots, (xs.shape[0], len(self.roots)))
        for _ in range(self.depth):
            slots = self._step(xs, slots)
        return slots

    def raw_one(self, row: Rows) -> float:
        """The raw score of one row (the score API): 1-D walks, fewest numpy calls."""
        if self.coded is not None:
            return self.init + float(self.coded.leaf_values(row).sum())
        slots = self.roots
        for _ in range(self.depth):
            slots = self.children.take(
                slots + (row.take(self.feature.take(slots)) <= self.threshold.take(slots))
            )
        return self.init + float(self.scaled.take(slots).sum())

    def raw(self, xs: Rows) -> Vector:
        # scikit-learn adds (rate *) leaf value tree by tree; a pairwise sum of the same
        # terms differs by a few ulps, far inside the 1e-9 the fast path promises.
        if xs.shape[0] == 1:
            return np.array([self.raw_one(xs[0])])
        if self.coded is not None:
            coded: Vector = self.init + self.coded.leaf_values(xs).sum(axis=1)
            return coded
        result: Vector = self.init + self.scaled.take(self.leaves(xs)).sum(axis=1)
        return result

    def contributions(self, xs: Rows, n_features: int) -> Matrix:
        """Per-feature contributions of rows ``xs`` (n, features): the node-value changes
        along each tree's decision path, credited to the feature split on (a leaf's step
        changes nothing, so it needs no mask), summed in one ``bincount``."""
        n = xs.shape[0]
        slots = np.broadcast_to(self.roots, (n, len(self.roots)))
        base = (np.arange(n) * n_features)[:, None]
        keys, deltas = [], []
        for _ in range(self.depth):
            following = self._step(xs, slots)
            keys.append((base + self.feature.take(slots)).ravel())
            deltas.append((self.value.take(following) - self.value.take(slots)).ravel())
            slots = following
        total = np.bincount(np.concatenate(keys), np.concatenate(deltas), n * n_features)
        result: Matrix = total.astype(np.float64, copy=False).reshape(n, n_features)
        return self.rate * result


# Trees of up to this many levels (the gbdt candidate's three) have at most seven inner
# nodes, whose comparisons fit in a byte.
_CODED_DEPTH = 3
_CODED_INNER = 2**_CODED_DEPTH - 1


class _CodedTrees:
    """Shallow trees read without a walk: each tree is laid out as a complete tree of
    ``_CODED_DEPTH`` levels (heap order: node ``k``'s children are ``2k + 1``, left, and
    ``2k + 2``), all its inner nodes are compared at once, and the comparisons, read as
    one byte, index the tree's table of (learning-rate scaled) leaf values. A leaf above the
    last level stands in every place below it, so whatever its padding compares, the value
    is its own. A row costs nine numpy calls in all, where a walk costs six per level: the
    bench's 150-tree candidate scored a row's raw score in 8.3 us walked, 4.7 us coded.
    """

    def __init__(self, model: Gbdt) -> None:
        count = len(model.trees)
        # An eighth comparison per tree fills its byte: against -inf, never true.
        feature = np.zeros((count, 8), dtype=np.intp)
        threshold = np.full((count, 8), -math.inf)
        table = np.empty((count, 2**_CODED_INNER))
        for t, tree in enumerate(model.trees):
            leaves = [0.0] * 2**_CODED_DEPTH
            # (node of the tree, its place in the complete tree)
            stack = [(0, 0)]
            while stack:
                node, place = stack.pop()
                if place >= _CODED_INNER:
                    leaves[place - _CODED_INNER] = tree.value[node]
                elif tree.left[node] < 0:
                    # +inf: always left, though either way leads to this leaf's value.
                    threshold[t, place] = math.inf
                    stack += [(node, 2 * place + 1), (node, 2 * place + 2)]
                else:
                    feature[t, place] = tree.feature[node]
                    threshold[t, place] = tree.threshold[node]
                    stack += [(tree.left[node], 2 * place + 1), (tree.right[node], 2 * place + 2)]
            for code in range(2**_CODED_INNER):
                place = 0
                while place < _CODED_INNER:
                    place = 2 * place + (1 if code >> place & 1 else 2)
                table[t, code] = model.learning_rate * leaves[place - _CODED_INNER]
        self.feature = feature.ravel()
        self.threshold = threshold.ravel()
        self.table = table.ravel()
        self.base = np.arange(count, dtype=np.uint64) * np.uint64(2**_CODED_INNER)

    def leaf_values(self, xs: Rows) -> Matrix:
        """Each tree's scaled leaf value for one row (1-D: per tree) or for rows (2-D: rows x
        trees), ``xs`` in the trees' comparison dtype."""
        # Compared as float64 (exactly the values of ``xs``): a float32 row against the
        # float64 thresholds costs numpy a cast per comparison.
        went_left = xs.astype(np.float64, copy=False).take(self.feature, axis=-1) <= self.threshold
        # A tree's eight comparisons are eight bytes of 0 or 1: one uint64, whose bytes the
        # multiplication gathers, byte k as bit k, into its top byte (no two partial
        # products meet, so nothing carries).
        codes = went_left.view(_LITTLE_ENDIAN_U64) * _GATHER_BITS >> _TOP_BYTE
        codes += self.base
        values: Matrix = self.table.take(codes)
        return values


_LITTLE_ENDIAN_U64 = np.dtype("<u8")  # byte k holds comparison k on any machine
_GATHER_BITS = np.uint64(0x0102040810204080)
_TOP_BYTE = np.uint64(56)


def _depth(tree: Tree) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if tree.left[node] >= 0:
            stack += [(tree.left[node], depth + 1), (tree.right[node], depth + 1)]
    return deepest


class RiskModel:
    def __init__(self, artifact: Artifact, spec: FeatureSpec, manifest: Manifest | None = None):
        if artifact.format != ARTIFACT_FORMAT:
            raise ModelError(f"unsupported model format {artifact.format!r}")
        ref = artifact.feature_spec
        if ref.hash != spec.hash or ref.names != list(spec.names):
            raise ModelError(
                f"model {artifact.model_version} was built for feature spec {ref.hash[:12]} "
                f"({len(ref.names)} features); this server computes {spec.hash[:12]} "
                f"({len(spec)} features, windows {', '.join(spec.window_labels)}). "
                "Use the reuse windows the model was trained with, or retrain it."
            )
        self.artifact = artifact
        self.manifest = manifest
        self.version = artifact.model_version
        self._n = len(spec)
        self._codes = [f.reason_code for f in spec.features]
        model = artifact.model
        self._logistic = model if isinstance(model, Logistic) else None
        self._ensemble = _Ensemble(model, spec.names) if isinstance(model, Gbdt) else None
        if self._logistic is not None:
            if len(self._logistic.coefficients) != self._n:
                raise ModelError("coefficient count does not match the feature spec")
            self._coef = np.asarray(self._logistic.coefficients, dtype=np.float64)
            # A single row is scored in plain Python: for some 60 features that is half
            # the cost of numpy's per-call overhead on a dot product and a few ufuncs.
            self._coef_list: list[float] = self._coef.tolist()
            self._indices = range(self._n)
        cal = artifact.calibration
        self._iso = (
            (np.asarray(cal.x), np.asarray(cal.y)) if isinstance(cal, IsotonicCalibration) else None
        )

    @classmethod
    def load(cls, path: Path, spec: FeatureSpec) -> RiskModel:
        try:
            body = path.read_bytes()
            manifest = _manifest_decoder.decode(manifest_path(path).read_bytes())
            if hashlib.sha256(body).hexdigest() != manifest.artifact_sha256:
                raise ModelError(f"{path} does not match the sha256 recorded in its manifest")
            artifact = _artifact_decoder.decode(body)
        except (OSError, msgspec.DecodeError) as exc:
            raise ModelError(f"cannot load model artifact {path}: {exc}") from None
        if manifest.feature_spec != artifact.feature_spec:
            raise ModelError(f"{path}: manifest and artifact name different feature specs")
        return cls(artifact, spec, manifest)

    # -- raw scores ---------------------------------------------------------------------

    def raw(self, x: Row) -> float:
        if self._logistic is not None:
            return self._logistic.intercept + math.fsum([c for c, _ in self._terms(_floats(x))])
        assert self._ensemble is not None
        return self._ensemble.raw_one(self._ensemble.rows(np.asarray(x, dtype=np.float64)))

    def raw_many(self, xs: npt.NDArray[np.float64]) -> Vector:
        if self._logistic is not None:
            result: Vector = self._logistic.intercept + xs @ self._coef
            return result
        assert self._ensemble is not None
        return self._ensemble.raw(self._ensemble.rows(xs))

    def contributions(self, x: Vector) -> Vector:
        if self._logistic is not None:
            result: Vector = self._coef * x
            return result
        assert self._ensemble is not None
        row: Vector = self._ensemble.contributions(self._ensemble.rows(x[None, :]), self._n)[0]
        return row

    def contributions_many(self, xs: Matrix) -> Matrix:
        if self._logistic is not None:
            result: Matrix = xs * self._coef
            return result
        assert self._ensemble is not None
        return self._ensemble.contributions(self._ensemble.rows(xs), self._n)

    # -- probabilities ------------------------------------------------------------------

    def bias(self) -> float:
        """The raw score before any feature speaks: raw = bias + sum(contributions)."""
        if self._logistic is not None:
            return self._logistic.intercept
        assert self._ensemble is not None
        ensemble = self._ensemble
        return ensemble.init + ensemble.rate * float(ensemble.value.take(ensemble.roots).sum())

    def calibrate(self, raw: Vector) -> Vector:
        cal = self.artifact.calibration
        if isinstance(cal, SigmoidCalibration):
            result: Vector = 1.0 / (1.0 + np.exp(cal.a * raw + cal.b))
            return result
        if self._iso is not None:
            interpolated: Vector = np.interp(raw, self._iso[0], self._iso[1])
            return interpolated
        plain: Vector = 1.0 / (1.0 + np.exp(-raw))
        return plain

    def probability(self, x: Row) -> float:
        return self._calibrated(self.raw(x))

    def _calibrated(self, raw: float) -> float:
        cal = self.artifact.calibration
        if isinstance(cal, SigmoidCalibration):
            return _expit(-(cal.a * raw + cal.b))
        if self._iso is not None:
            return float(np.interp(raw, self._iso[0], self._iso[1]))
        return _expit(raw)

    def predict_proba(self, xs: npt.NDArray[np.float64]) -> Vector:
        """Probability of fraud for each row of ``xs`` (the batch fast path)."""
        return self.calibrate(self.raw_many(xs))

    # -- the verdict --------------------------------------------------------------------

    def risk(self, x: Row, thresholds: Thresholds) -> Risk:
        if self._logistic is not None:
            terms = self._terms(_floats(x))
            raw = self._logistic.intercept + math.fsum([c for c, _ in terms])
            score = round(100 * self._calibrated(raw))
            top = sorted([(-c, i) for c, i in terms if c > 0])[:MAX_REASONS]
        else:
            vector = np.asarray(x, dtype=np.float64)
            score = round(100 * self.probability(vector))
            # Only features that are present can be reasons: path attribution can credit a
            # signal that did not fire (a tree split "no IPQS failure"), which no analyst
            # reads as a reason.
            present = (self.contributions(vector) * (vector != 0)).tolist()
            top = sorted([(-c, i) for i, c in enumerate(present) if c > 0])[:MAX_REASONS]
        level, action = thresholds.classify(score)
        return Risk(
            score=score,
            level=level,
            action=action,
            reasons=[Reason(self._codes[i], shown(-c)) for c, i in top],
            model_version=self.version,
        )

    def _terms(self, values: list[float]) -> list[tuple[float, int]]:
        """A logistic model's contributions ``coef_i * x_i`` with their feature indices, for
        the features present (x_i != 0; the others contribute exactly 0): a row holds a
        dozen or so of some 60, and ``compress`` finds them in C. Their ``fsum`` is the
        correctly rounded dot product, whatever the order."""
        coef = self._coef_list
        return [(coef[i] * values[i], i) for i in compress(self._indices, values)]

    def risk_many(self, xs: Matrix, thresholds: Thresholds) -> list[Risk]:
        """``risk`` for every row of ``xs``, vectorised (batch rescoring)."""
        ranked, contributions = self.ranked_reasons(xs)
        risks = []
        for row, (score, reasons) in enumerate(zip(self.scores(xs), ranked, strict=True)):
            level, action = thresholds.classify(score)
            risks.append(
                Risk(
                    score=score,
                    level=level,
                    action=action,
                    reasons=[
                        Reason(self._codes[i], shown(float(contributions[row, i]))) for i in reasons
                    ],
                    model_version=self.version,
                )
            )
        return risks

    def scores(self, xs: Matrix) -> list[int]:
        """``risk``'s score of every row of ``xs``."""
        scores: list[int] = np.rint(100 * self.predict_proba(xs)).astype(np.int64).tolist()
        return scores

    def ranked_reasons(self, xs: Matrix) -> tuple[list[tuple[int, ...]], Matrix]:
        """``risk``'s reasons of every row of ``xs`` at once, as feature indices (largest
        contribution first, ties in feature order), and the contributions they rank."""
        picked, positive, present = self.top_reasons(xs)
        ranked = [tuple(row[:n]) for row, n in zip(picked.tolist(), positive.tolist(), strict=True)]
        return ranked, present

    def top_reasons(self, xs: Matrix) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], Matrix]:
        """``ranked_reasons`` as arrays: each row's ``MAX_REASONS`` largest contributions'
        feature indices (largest first), how many of them are reasons (the positive ones,
        which lead), and the contributions."""
        present = self.contributions_many(xs) * (xs != 0)
        # The largest MAX_REASONS per row, one argmax at a time (ties go to the first
        # feature, as in ``risk``'s sort of (-c, index)): cheaper than sorting every row.
        left = present.copy()
        rows = np.arange(len(left))
        width = min(MAX_REASONS, left.shape[1])
        picked = np.empty((len(left), width), dtype=np.intp)
        values = np.empty((len(left), width))
        for rank in range(width):
            best = left.argmax(axis=1)
            picked[:, rank] = best
            values[:, rank] = left[rows, best]
            left[rows, best] = -np.inf
        # Picked largest first, the positive contributions lead each row: count them.
        positive: npt.NDArray[np.intp] = (values > 0).sum(axis=1)
        return picked, positive, present


def _floats(x: Row) -> list[float]:
    return x if isinstance(x, list) else x.tolist()


def _expit(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
