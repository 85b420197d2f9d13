"""In-process microbenchmarks, each against a baseline measured in the same run:

- model inference per row: the numpy fast path vs scikit-learn's ``predict_proba`` on the
  same fitted model (a small training run on simulated traffic), single rows and batches;
- batch rescoring: events/s of ``Rescorer`` vs a decode-only pass (``decode_event``, msgspec
  into the event Structs) over the same simulated file.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import numpy as np

from service.bench.report import Row
from service.decode import decode_event
from service.rescore import Rescorer
from service.settings import Settings
from service.simulate import SimulationConfig, simulate
from service.training import TrainingConfig, train

INFERENCE_MIN_SPEEDUP = 50.0
RESCORE_MIN_RATIO = 0.5
NONE = "—"


def _per_call(function: Callable[[], object], budget_s: float = 1.0) -> float:
    """Seconds per call, repeating until ``budget_s`` is spent (after one warm-up call)."""
    function()
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget_s:
        function()
        calls += 1
    return elapsed / max(calls, 1)


def inference_rows() -> list[Row]:
    result = train(TrainingConfig(seed=11, days=4, scale=0.3, gbdt_trees=150))
    rows: list[Row] = []
    for candidate in result.candidates:
        from service.model import Artifact, RiskModel

        artifact = Artifact(
            format=result.artifact.format,
            model_version=candidate.name,
            feature_spec=result.artifact.feature_spec,
            model=candidate.artifact_model,
            calibration=candidate.calibration,
            thresholds=result.artifact.thresholds,
        )
        fast = RiskModel(artifact, result.spec)
        x = result.test.x
        one = x[:1]
        exact = float(
            np.max(np.abs(fast.predict_proba(x) - candidate.calibrated.predict_proba(x)[:, 1]))
        )
        sk_single = _per_call(partial(candidate.calibrated.predict_proba, one))
        np_single = _per_call(partial(fast.probability, one[0]))
        sk_batch = _per_call(partial(candidate.calibrated.predict_proba, x)) / len(x)
        np_batch = _per_call(partial(fast.predict_proba, x)) / len(x)
        for label, ours, theirs in (
            ("1 row", np_single, sk_single),
            (f"{len(x)} rows", np_batch, sk_batch),
        ):
            speedup = theirs / ours
            ok = speedup >= INFERENCE_MIN_SPEEDUP and exact <= 1e-9
            rows.append(
                Row(
                    figure=f"{candidate.name} inference us/row, {label} (max |diff| {exact:.0e})",
                    value=f"{ours * 1e6:.2f}",
                    baseline=f"{theirs * 1e6:.2f} (sklearn)",
                    ratio=f"{speedup:.0f}x",
                    target=f">= {INFERENCE_MIN_SPEEDUP:g}x, equal to 1e-9",
                    result="pass" if ok else "FAIL",
                )
            )
    return rows


def rescore_rows(days: int = 3) -> list[Row]:
    lines = [e.body for e in simulate(SimulationConfig(seed=13, days=days))]
    epoch = datetime.fromtimestamp(0, UTC)
    started = time.perf_counter()
    for line in lines:
        decode_event(line, epoch)
    decode_rate = len(lines) / (time.perf_counter() - started)
    settings = Settings()
    from service.app import load_model

    _, model, thresholds = load_model(settings)
    started = time.perf_counter()
    Rescorer(settings, model, thresholds).run(iter(lines), io.BytesIO(), io.BytesIO())
    rescore_rate = len(lines) / (time.perf_counter() - started)
    # Memory separately: tracing slows Python down several times.
    tracemalloc.start()
    Rescorer(settings, model, thresholds).run(iter(lines), io.BytesIO(), io.BytesIO())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ratio = rescore_rate / decode_rate
    return [
        Row(
            figure=f"rescore events/s ({len(lines):,} simulated events)",
            value=f"{rescore_rate:,.0f}",
            baseline=f"{decode_rate:,.0f} (decode only)",
            ratio=f"{ratio:.2f}",
            target=f">= {RESCORE_MIN_RATIO:g} x decode-only",
            result="pass" if ratio >= RESCORE_MIN_RATIO else "FAIL",
        ),
        Row(
            figure="rescore peak traced memory (MiB, in-memory input excluded)",
            value=f"{peak / 2**20:.1f}",
            baseline=NONE,
            ratio=NONE,
            target=NONE,
            result="info",
        ),
    ]
