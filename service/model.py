"""The risk model: a JSON artifact (no pickle) and its numpy serving path.

A logistic model: ``p = sigmoid(intercept + coef . x)``, score = round(100 p). Reasons are
the model's own per-feature contributions ``coef_i * x_i`` (positive ones, largest first),
so a reason can never disagree with the score it explains. Level and action come from two
thresholds on the score: the artifact's, unless settings override them.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from service.features import FeatureSpec

ARTIFACT_FORMAT = "riskwire.linear.v1"
MAX_REASONS = 5

Level = Literal["low", "medium", "high"]
Action = Literal["allow", "review", "block"]


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


class LinearArtifact(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    model_version: str
    created_at: datetime
    description: str
    feature_spec: FeatureSpecRef
    intercept: float
    coefficients: list[float]
    thresholds: Thresholds


class Reason(msgspec.Struct, frozen=True):
    code: str
    contribution: float


class Risk(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    score: int
    level: Level
    action: Action
    reasons: list[Reason]
    model_version: str


_decoder = msgspec.json.Decoder(LinearArtifact)
_encoder = msgspec.json.Encoder()


def save_artifact(artifact: LinearArtifact, path: Path) -> None:
    path.write_bytes(msgspec.json.format(_encoder.encode(artifact), indent=2) + b"\n")


class LinearModel:
    def __init__(self, artifact: LinearArtifact, spec: FeatureSpec) -> None:
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
        if len(artifact.coefficients) != len(spec):
            raise ModelError("coefficient count does not match the feature spec")
        self.artifact = artifact
        self.version = artifact.model_version
        self._intercept = artifact.intercept
        self._coef = np.asarray(artifact.coefficients, dtype=np.float64)
        self._codes = [f.reason_code for f in spec.features]

    @classmethod
    def load(cls, path: Path, spec: FeatureSpec) -> LinearModel:
        try:
            artifact = _decoder.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise ModelError(f"cannot load model artifact {path}: {exc}") from None
        return cls(artifact, spec)

    def probability(self, x: npt.NDArray[np.float64]) -> float:
        z = self._intercept + float(self._coef @ x)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def risk(self, x: npt.NDArray[np.float64], thresholds: Thresholds) -> Risk:
        contributions = self._coef * x
        score = round(100 * self.probability(x))
        level, action = thresholds.classify(score)
        order = np.argsort(-contributions, kind="stable")[:MAX_REASONS]
        reasons = [
            Reason(self._codes[i], round(float(contributions[i]), 4))
            for i in order
            if contributions[i] > 0
        ]
        return Risk(
            score=score, level=level, action=action, reasons=reasons, model_version=self.version
        )
