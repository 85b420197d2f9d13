"""The batch feature matrix equals the single-row feature vector, row for row."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from service.app import load_model
from service.decode import decode_event
from service.features import (
    _REUSE_ARRAY,
    FeatureInput,
    FeatureRows,
    FeatureSpec,
    _log1p_above_one,
    _reuse_matrix,
)
from service.identifiers import IdentifierPolicy
from service.lists import AccessLists
from service.observation import IpqsSignals, Observation, Signals, Source
from service.reuse import RELATION_NAMES, ReuseSnapshot
from service.reuse_memory import MemoryReuseStore
from service.scoring import Scorer, ipqs_blob
from service.settings import Settings
from service.simulate import SimulationConfig, simulate

SETTINGS = Settings()
SPEC = FeatureSpec(SETTINGS.reuse_window_labels)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SOURCES: tuple[Source, ...] = ("fingerprint_v3", "fingerprint_v4", "ipqs")
T = TypeVar("T")


def rows_of(items: list[FeatureInput]) -> FeatureRows:
    counts = np.array(
        [[c for name in RELATION_NAMES for c in item.reuse.counts[name]] for item in items],
        dtype=np.int64,
    ).reshape(len(items), len(RELATION_NAMES) * len(SETTINGS.reuse_windows_ms))
    return FeatureRows(
        [item.obs for item in items],
        [item.ipqs for item in items],
        counts,
        [item.reuse.device_first_seen_ms for item in items],
        [item.now.timestamp() for item in items],
    )


def vectors(items: list[FeatureInput]) -> npt.NDArray[np.float64]:
    return np.vstack([SPEC.vector(item) for item in items])


def test_the_matrix_of_a_simulated_stream_equals_the_scorers_vectors() -> None:
    """Replayed as ``Scorer.features_in`` replays it: reuse counts, joined IPQS results and
    first sightings as the store gives them."""
    store = MemoryReuseStore(
        windows_ms=SETTINGS.reuse_windows_ms,
        cap=SETTINGS.reuse_cap,
        ipqs_window_ms=SETTINGS.ipqs_join_window_s * 1000,
    )
    _, model, thresholds = load_model(SETTINGS)
    scorer = Scorer(
        policy=IdentifierPolicy(b"any key"),
        store=None,
        spec=SPEC,
        model=model,
        thresholds=thresholds,
        lists=AccessLists(SETTINGS),
    )
    epoch = datetime.fromtimestamp(0, UTC)
    items, expected = [], []
    for event in simulate(SimulationConfig(seed=2, days=2, scale=0.3)):
        obs = decode_event(event.body, epoch)
        reuse = store.observe(
            scorer.refs(obs), int(obs.time.timestamp() * 1000), ipqs_blob=ipqs_blob(obs)
        )
        expected.append(scorer.features(obs, reuse, obs.time))
        ipqs = obs.ipqs
        if ipqs is None and reuse.ipqs_blob is not None:
            ipqs = msgspec.msgpack.decode(reuse.ipqs_blob, type=IpqsSignals)
        items.append(FeatureInput(obs, reuse, ipqs, obs.time))
    matrix = SPEC.matrix(rows_of(items))
    assert np.array_equal(matrix, np.vstack(expected))
    # The stream exercised the columns: joined IPQS results, known devices, reuse.
    names = list(SPEC.names)
    for name in ("ipqs_fraud_chance", "device_newness", "vpn", "devices_per_user_24h"):
        assert (matrix[:, names.index(name)] > 0).sum() > 10, name
    assert len({item.obs.source for item in items}) == 3


def test_the_matrix_equals_every_features_own_transform_on_edge_cases() -> None:
    rng = random.Random(8)

    def maybe(value: T) -> T | None:
        return None if rng.random() < 0.3 else value

    items = []
    for n in range(400):
        flags: dict[str, Any] = {
            name: maybe(rng.random() < 0.5)
            for name in Signals.__struct_fields__
            if name != "suspect_score"
        }
        signals = Signals(
            **flags,
            suspect_score=maybe(rng.choice([0, 3, 99, 100, 101, 250])),
        )
        ipqs = (
            None
            if rng.random() < 0.3
            else IpqsSignals(
                success=rng.random() < 0.7,
                fraud_chance=maybe(rng.randint(0, 100)),
                recent_abuse=maybe(rng.random() < 0.5),
                bot_status=maybe(rng.random() < 0.5),
                guid_confidence=maybe(rng.randint(0, 100)),
            )
        )
        moment = NOW + timedelta(
            milliseconds=rng.randint(0, 10**9), microseconds=rng.randint(0, 999)
        )
        obs = Observation(
            source=rng.choice(SOURCES),
            request_id=f"r{n}",
            visitor_id="v",
            time=moment,
            visitor_found=maybe(rng.random() < 0.5),
            confidence=maybe(rng.choice([0.0, 0.5, 0.93, 1.0, 1.2, -0.1])),
            incognito=maybe(rng.random() < 0.5),
            first_seen_at=maybe(moment - timedelta(days=rng.uniform(-2, 400))),
            signals=signals,
        )
        counts = {
            name: tuple(sorted(rng.choices([0, 1, 2, 9, 1000], k=3))) for name in RELATION_NAMES
        }
        stored = maybe(int(moment.timestamp() * 1000) - rng.randint(-1000, 10**10))
        reuse = ReuseSnapshot.of(counts, stored)
        items.append(FeatureInput(obs, reuse, ipqs, moment))
    matrix = SPEC.matrix(rows_of(items))
    assert np.array_equal(matrix, vectors(items))
    assert np.array_equal(matrix, np.vstack([SPEC.vector_slow(item) for item in items]))


def test_the_matrix_of_no_rows_is_empty() -> None:
    assert SPEC.matrix(rows_of([])).shape == (0, len(SPEC))


def test_reuse_block_lookup_is_the_transform_bit_for_bit() -> None:
    """The chunk's reuse block is looked up in the table where it holds every count, and
    computed past it: either way, the batch path's own expression, to the bit."""
    inside = np.arange(len(_REUSE_ARRAY), dtype=np.int64).reshape(-1, 32)
    past = inside + len(_REUSE_ARRAY) - 7  # a few counts the table holds, the rest past it
    for counts in (inside, past, inside[:0]):
        looked_up, computed = _reuse_matrix(counts), _log1p_above_one(counts)
        assert looked_up.shape == computed.shape
        assert looked_up.tobytes() == computed.tobytes()
