"""The first shipped model: logistic coefficients set from vendors' published signal weights.

Nothing here is trained. Fingerprint publishes the weights of its Suspect Score (web); each
point becomes ``POINT`` logits, so one 14-point signal (Tor, public proxy, VM, blocklisted
IP) takes a clean visitor from ~3 to ~59, past the review threshold. IPQS publishes that
fraud_chance has a median of 25, that >= 75 is suspicious and >= 85 should be flagged or
blocked: the intercept and the fraud_chance coefficient are solved so that 25 scores ~12 and
85 scores ~85. Signals with no published weight and the reuse counts carry judgment weights,
marked as such; the next milestone replaces this model with a trained one in the same format.

Regenerate with ``python -m service baseline-model`` (the test suite checks the shipped file
matches).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from service import __version__
from service.features import FeatureSpec
from service.model import (
    ARTIFACT_FORMAT,
    Artifact,
    FeatureSpecRef,
    Logistic,
    Manifest,
    Thresholds,
)

POINT = 0.28
# Fingerprint Suspect Score weights (web), in points.
SUSPECT_SCORE_POINTS = {
    "bot": 7,
    "incognito": 4,
    "vpn_timezone_mismatch": 3,
    "vpn_public": 4,
    "relay": 4,
    "tampering": 8,
    "anti_detect_browser": 8,
    "virtual_machine": 14,
    "privacy_settings": 6,
    "tor": 14,
    "proxy": 14,
    "ip_blocklist": 14,
    "attack_source": 13,
    "high_activity": 6,
}
# Judgment, in the same points: signals Fingerprint does not weigh in its Suspect Score.
JUDGMENT_POINTS = {
    "vpn": 3,  # generic VPN flag: as the weakest VPN method; legitimate VPN use is common
    "datacenter": 4,
    "location_spoofing": 4,
    "developer_tools": 2,
    "emulator": 6,
    "replayed": 8,
}


def _solve_fraud_chance() -> tuple[float, float]:
    """Intercept and fraud_chance coefficient with score(25) = 12 and score(85) = 85."""

    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    slope = (logit(0.85) - logit(0.12)) / (0.85 - 0.25)
    return logit(0.12) - 0.25 * slope, slope


INTERCEPT, FRAUD_CHANCE = _solve_fraud_chance()

OTHER = {
    "ipqs_fraud_chance": FRAUD_CHANCE,
    "ipqs_bot_status": SUSPECT_SCORE_POINTS["bot"] * POINT,  # IPQS's bot = a bad bot
    "ipqs_recent_abuse": 2.0,  # judgment: verified abuse on IPQS's network
    "ipqs_lookup_failed": 1.0,  # judgment: the fingerprint script was blocked or broken
    "low_confidence": 2.0,  # judgment: confidence 0.5 adds one logit
    "visitor_not_found": 0.3,
    "device_newness": 0.6,
    # The suspect score is the sum of the signals above: weighting it too would count twice.
    "suspect_score": 0.0,
}
# Judgment: extra distinct values per window, on log1p(n - 1). Narrow windows weigh most:
# six user ids on one device within an hour is the pattern of a fraud ring.
REUSE = {
    "users_per_device": (1.2, 0.6, 0.2),
    "emails_per_device": (1.0, 0.5, 0.2),
    "devices_per_user": (0.8, 0.4, 0.1),
    "ips_per_device": (0.4, 0.2, 0.05),
    "countries_per_device": (0.8, 0.4, 0.1),
    "linked_ids_per_device": (0.6, 0.3, 0.1),
    "events_per_device": (0.3, 0.1, 0.0),
    "ips_per_user": (0.3, 0.15, 0.05),
    "events_per_user": (0.2, 0.05, 0.0),
    "devices_per_ip": (0.3, 0.15, 0.05),
    "users_per_ip": (0.3, 0.15, 0.05),
    "events_per_ip": (0.2, 0.05, 0.0),
}
BASELINE_WINDOWS = ("1h", "24h", "30d")
THRESHOLDS = Thresholds(review=50, block=80)
VERSION = "baseline-2026.11.1"


def _signal_coefficient(name: str) -> float:
    if name in SUSPECT_SCORE_POINTS:
        return SUSPECT_SCORE_POINTS[name] * POINT
    if name in JUDGMENT_POINTS:
        return JUDGMENT_POINTS[name] * POINT
    return OTHER[name]


def prior_weights(spec: FeatureSpec) -> list[float]:
    """The coefficients for any window configuration: the baseline's own (``spec`` with
    ``BASELINE_WINDOWS``), and what training starts from and pulls towards
    (``service.training.fit_logistic``). A reuse window takes the weight of the baseline
    window of the same rank (narrowest, widest, or in between)."""
    last = len(spec.window_labels) - 1
    weights = []
    for name in spec.names:
        relation, _, label = name.rpartition("_")
        if relation in REUSE and label in spec.window_labels:
            rank = spec.window_labels.index(label)
            weights.append(REUSE[relation][0 if rank == 0 else 2 if rank == last else 1])
        else:
            weights.append(_signal_coefficient(name))
    return weights


def build_baseline() -> tuple[Artifact, Manifest]:
    spec = FeatureSpec(BASELINE_WINDOWS)
    ref = FeatureSpecRef(spec.version, spec.hash, list(spec.names))
    artifact = Artifact(
        format=ARTIFACT_FORMAT,
        model_version=VERSION,
        feature_spec=ref,
        model=Logistic(
            intercept=round(INTERCEPT, 6),
            coefficients=[round(weight, 6) for weight in prior_weights(spec)],
        ),
        thresholds=THRESHOLDS,
    )
    manifest = Manifest(
        model_version=VERSION,
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        description=(
            "Hand-set logistic model from Fingerprint Suspect Score weights and IPQS "
            "fraud_chance guidance; not trained. See service/baseline_model.py."
        ),
        artifact_sha256="",  # set by model.save from the written bytes
        feature_spec=ref,
        thresholds=THRESHOLDS,
        library_versions={"riskwire": __version__},
        training_data={"source": "none: coefficients set by hand from published weights"},
    )
    return artifact, manifest
