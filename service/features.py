"""The feature specification: one ordered list of (name, meaning, transform), shared by
serving, batch rescoring and training so the model and the server cannot disagree.

Inputs are an Observation, its reuse snapshot and the IPQS signals joined to it. Every
feature is a float where 0 means "nothing suspicious known"; unknown signals are 0, so a
missing product never reads as risk (nor as a clean bill: the model has no evidence either
way). Reuse counts enter as ``log1p(count - 1)``: the first value is normal, every extra
distinct user / device / IP adds less than the one before.

The spec's hash covers names, meanings and transform kinds; a model artifact records the
hash it was trained on, and the server refuses one that does not match.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from operator import attrgetter

import msgspec
import numpy as np
import numpy.typing as npt

from service.observation import IpqsSignals, Observation, Signals
from service.reuse import RELATION_NAMES, ReuseSnapshot

FEATURE_SPEC_VERSION = "1"
DAY_MS = 86_400_000


class FeatureInput(msgspec.Struct, frozen=True):
    obs: Observation
    reuse: ReuseSnapshot
    ipqs: IpqsSignals | None
    now: datetime


class FeatureRows:
    """``FeatureInput`` for many rows at once, read column by column (batch rescoring):
    ``reuse_counts`` holds each row's counts relation-major (``RELATION_NAMES`` order,
    narrowest window first), ``now`` each row's moment as ``datetime.timestamp()``."""

    def __init__(
        self,
        observations: Sequence[Observation],
        ipqs: Sequence[IpqsSignals | None],
        reuse_counts: npt.NDArray[np.int64],
        device_first_seen_ms: Sequence[int | None],
        now: Sequence[float],
    ) -> None:
        self.observations = observations
        self.ipqs = ipqs
        self.reuse_counts = reuse_counts
        self.device_first_seen_ms = device_first_seen_ms
        self.now = now

    def __len__(self) -> int:
        return len(self.observations)

    def observed(self, name: str) -> list[object]:
        return list(map(attrgetter(name), self.observations))

    def signal(self, name: str, transform: Transform) -> Column:
        """``transform`` (elementwise) of each row's signal ``name``."""
        return self._signals.column(_SIGNAL_FIELDS.index(name), transform)

    def signal_flags(self, names: Sequence[str]) -> npt.NDArray[np.float64]:
        """``_flags`` of each row's signals ``names``, a column per name."""
        return self._signals.column([_SIGNAL_FIELDS.index(name) for name in names], _flags)

    def ipqs_field(self, name: str, transform: Transform) -> Column:
        """``transform`` (elementwise) of each row's IPQS field ``name``."""
        return self._ipqs.column(_IPQS_FIELDS.index(name), transform)

    @cached_property
    def _signals(self) -> _Distinct:
        signals = [obs.signals for obs in self.observations]
        return _Distinct(signals, len(_SIGNAL_FIELDS), _NO_SIGNALS)

    @cached_property
    def _ipqs(self) -> _Distinct:
        # No IPQS result reads as the defaults of one (success, every signal unknown): each
        # IPQS feature of either is 0, as the row definitions say.
        return _Distinct(self.ipqs, len(_IPQS_FIELDS), _NO_IPQS)


class _Distinct:
    """Values of a frozen struct, one per row, read as a table of the distinct values'
    fields and each row's index in it: a chunk holds a few dozen distinct signal sets, so
    their fields are taken out, and transformed, once each rather than once per row."""

    def __init__(
        self,
        values: Sequence[Signals | None] | Sequence[IpqsSignals | None],
        fields: int,
        missing: Signals | IpqsSignals,
    ) -> None:
        """``missing`` stands for None (most rows of the IPQS columns): it is the table's
        first row, which None rows take without a struct hashed each (0.2 us a row)."""
        index: dict[Signals | IpqsSignals, int] = {missing: 0}
        self._rows = np.array(
            [0 if v is None else index.setdefault(v, len(index)) for v in values], dtype=np.intp
        )
        self._table = _table([msgspec.structs.astuple(v) for v in index], fields)

    def column(self, field: int | list[int], transform: Transform) -> npt.NDArray[np.float64]:
        """``transform`` of the field (or fields, a column each) of every row: of each
        distinct value's, then spread over the rows (a flag of 512 rows cost 13 us from
        Python objects, 3 us this way)."""
        column: npt.NDArray[np.float64] = transform(self._table[:, field])[self._rows]
        return column


_SIGNAL_FIELDS = Signals.__struct_fields__
_IPQS_FIELDS = IpqsSignals.__struct_fields__
_NO_IPQS = IpqsSignals()
_NO_SIGNALS = Signals()
Column = npt.NDArray[np.float64]
# An elementwise transform of field values (Python objects) into floats.
Transform = Callable[[npt.NDArray[np.object_]], npt.NDArray[np.float64]]


def _table(rows: list[tuple[object, ...]], fields: int) -> npt.NDArray[np.object_]:
    """Tuples of ``fields`` values as a 2-D object array (rows x fields), also when empty."""
    table = np.empty((len(rows), fields), dtype=object)
    if rows:
        table[:] = rows
    return table


def _flags(values: Sequence[object] | npt.NDArray[np.object_]) -> Column:
    """``_flag`` of every value: an object array's ``astype(bool)`` is Python truthiness."""
    return np.asarray(values, dtype=object).astype(bool).astype(np.float64)


def _numbers(values: Sequence[object] | npt.NDArray[np.object_], missing: float) -> Column:
    """Numbers or None as floats, ``missing`` for None."""
    return np.array([missing if v is None else v for v in values], dtype=np.float64)


def _numbers_or(missing: float) -> Transform:
    """``_numbers`` with ``missing`` for None, as a transform."""
    return lambda values: _numbers(values, missing)


class Feature(msgspec.Struct, frozen=True):
    """``compute`` gives one row's value; ``column`` the values of many rows at once (none
    for the reuse features, which ``FeatureSpec`` transforms as one block)."""

    name: str
    meaning: str
    kind: str  # how the value is derived; part of the spec hash
    compute: Callable[[FeatureInput], float]
    column: Callable[[FeatureRows], Column] | None = None

    @property
    def reason_code(self) -> str:
        return self.name.upper()


def _flag(value: bool | None) -> float:
    return 1.0 if value else 0.0


_SIGNAL_FLAG = "flag:signals."


def _signal(name: str, meaning: str) -> Feature:
    # No column of its own: ``FeatureSpec.matrix`` reads the run of signal flags as a block.
    return Feature(
        name, meaning, _SIGNAL_FLAG + name, lambda f: _flag(getattr(f.obs.signals, name))
    )


def _low_confidence(f: FeatureInput) -> float:
    if f.obs.confidence is not None:
        return min(max(1.0 - f.obs.confidence, 0.0), 1.0)
    if f.ipqs is not None and f.ipqs.guid_confidence is not None:
        return 1.0 - f.ipqs.guid_confidence / 100
    return 0.0


def _low_confidence_column(rows: FeatureRows) -> Column:
    confidence = _numbers(rows.observed("confidence"), math.nan)
    guid = rows.ipqs_field("guid_confidence", _numbers_or(math.nan))
    from_ipqs = np.where(np.isnan(guid), 0.0, 1.0 - guid / 100)
    own = np.minimum(np.maximum(1.0 - confidence, 0.0), 1.0)
    return np.where(np.isnan(confidence), from_ipqs, own)


def _device_newness(f: FeatureInput) -> float:
    known = [int(f.obs.first_seen_at.timestamp() * 1000)] if f.obs.first_seen_at else []
    if f.reuse.device_first_seen_ms is not None:
        known.append(f.reuse.device_first_seen_ms)
    if not known:
        return 0.0
    age_days = max(0.0, (f.now.timestamp() * 1000 - min(known)) / DAY_MS)
    return 1.0 / (1.0 + age_days)


def _device_newness_column(rows: FeatureRows) -> Column:
    # Milliseconds since the epoch stay below 2**53: as floats they are exact, and the
    # arithmetic is the row definition's, operation for operation. NaN stands for unknown,
    # which ``fmin`` passes over as ``min(known)`` does.
    reported = np.array(
        [
            int(obs.first_seen_at.timestamp() * 1000) if obs.first_seen_at else math.nan
            for obs in rows.observations
        ],
        dtype=np.float64,
    )
    stored = _numbers(rows.device_first_seen_ms, math.nan)
    earliest = np.fmin(reported, stored)
    age_days = np.maximum(0.0, (np.asarray(rows.now, dtype=np.float64) * 1000 - earliest) / DAY_MS)
    return np.where(np.isnan(earliest), 0.0, 1.0 / (1.0 + age_days))


def _log1p_above_one(counts: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> Column:
    """The reuse transform of counts, as the batch path computes it (``FeatureSpec.matrix``)."""
    result: npt.NDArray[np.float64] = np.log1p(np.maximum(counts - 1.0, 0.0))
    return result


# The transform of every count a set capped at the default 1,000 members (or a little more)
# can hold, worked out by the batch path's own expression, so a row looked up here, a
# matrix row computed there and each feature's own ``compute`` agree bit for bit.
_REUSE_ARRAY: npt.NDArray[np.float64] = _log1p_above_one(np.arange(4096, dtype=np.float64))
_REUSE_TABLE: tuple[float, ...] = tuple(_REUSE_ARRAY.tolist())


def _reuse_matrix(counts: npt.NDArray[np.int64]) -> Column:
    """``_log1p_above_one`` of a chunk's counts, looked up in the table where it holds them
    all (a gather costs a fraction of ``log1p``, some 18,000 of them a chunk)."""
    if counts.size and counts.min() >= 0 and counts.max() < len(_REUSE_ARRAY):
        looked_up: Column = _REUSE_ARRAY[counts]
        return looked_up
    return _log1p_above_one(counts)


def _reuse_block(counts: Sequence[int]) -> list[float]:
    table = _REUSE_TABLE
    try:
        # A comprehension indexes the tuple in the interpreter's own fast path: ~0.4 us for
        # a row's 36 counts, where ``map`` over ``__getitem__`` (a method wrapper) took 1 us.
        return [table[count] for count in counts]
    except IndexError:  # a cap raised past the table
        block: list[float] = _log1p_above_one(np.array(counts, dtype=np.int64)).tolist()
        return block


def _reuse(relation: str, window: int, label: str) -> Feature:
    def compute(f: FeatureInput) -> float:
        # numpy's log1p, as every other path: libm's differs in the last bit for a few
        # counts (3 among them).
        return float(np.log1p(max(f.reuse.counts[relation][window] - 1, 0)))

    name = f"{relation}_{label}"
    meaning = f"distinct {relation.replace('_per_', ' per ')} in the last {label}, log1p(n - 1)"
    return Feature(name, meaning, f"reuse:{relation}:{label}", compute)


class FeatureSpec:
    def __init__(self, window_labels: tuple[str, ...]) -> None:
        self.window_labels = window_labels
        self.features: tuple[Feature, ...] = (
            Feature(
                "low_confidence",
                "1 - identification confidence (Fingerprint score, else IPQS guid_confidence)",
                "confidence",
                _low_confidence,
                _low_confidence_column,
            ),
            Feature(
                "visitor_not_found",
                "Fingerprint has never seen this visitor before",
                "flag:visitor_found=false",
                lambda f: 1.0 if f.obs.visitor_found is False else 0.0,
                lambda rows: np.array(
                    [found is False for found in rows.observed("visitor_found")], np.float64
                ),
            ),
            Feature(
                "incognito",
                "private / incognito browsing",
                "flag:incognito",
                lambda f: _flag(f.obs.incognito),
                lambda rows: _flags(rows.observed("incognito")),
            ),
            _signal("vpn", "VPN detected"),
            _signal("vpn_timezone_mismatch", "VPN: browser timezone differs from the IP's"),
            _signal("vpn_public", "IP of a public VPN provider"),
            _signal("relay", "privacy relay (iCloud Private Relay and the like)"),
            _signal("proxy", "proxy detected"),
            _signal("tor", "Tor exit node"),
            _signal("bot", "bad bot (automation tool) detected"),
            _signal("tampering", "browser tampering detected"),
            _signal("anti_detect_browser", "anti-detect browser detected"),
            _signal("datacenter", "IP of a hosting / datacenter network"),
            _signal("ip_blocklist", "IP on a spam or attack blocklist"),
            _signal("attack_source", "IP is a known attack source"),
            _signal("virtual_machine", "running in a virtual machine"),
            _signal("privacy_settings", "privacy-focused browser settings"),
            _signal("location_spoofing", "location spoofing detected"),
            _signal("high_activity", "high-activity device"),
            _signal("developer_tools", "developer tools open"),
            _signal("emulator", "mobile emulator"),
            _signal("replayed", "the identification request was replayed"),
            Feature(
                "suspect_score",
                "Fingerprint Suspect Score / 100, capped at 1",
                "suspect_score/100",
                lambda f: min((f.obs.signals.suspect_score or 0) / 100, 1.0),
                lambda rows: np.minimum(rows.signal("suspect_score", _numbers_or(0)) / 100, 1.0),
            ),
            Feature(
                "ipqs_fraud_chance",
                "IPQS fraud_chance / 100 (own or joined result)",
                "ipqs.fraud_chance/100",
                lambda f: (f.ipqs.fraud_chance or 0) / 100 if f.ipqs else 0.0,
                lambda rows: rows.ipqs_field("fraud_chance", _numbers_or(0)) / 100,
            ),
            Feature(
                "ipqs_recent_abuse",
                "IPQS: recent verified abuse",
                "flag:ipqs.recent_abuse",
                lambda f: _flag(f.ipqs.recent_abuse) if f.ipqs else 0.0,
                lambda rows: rows.ipqs_field("recent_abuse", _flags),
            ),
            Feature(
                "ipqs_bot_status",
                "IPQS: bot or spoofed device",
                "flag:ipqs.bot_status",
                lambda f: _flag(f.ipqs.bot_status) if f.ipqs else 0.0,
                lambda rows: rows.ipqs_field("bot_status", _flags),
            ),
            Feature(
                "ipqs_lookup_failed",
                "an IPQS lookup was made and failed (blocked scripts, tampering)",
                "flag:ipqs.success=false",
                lambda f: 1.0 if f.ipqs is not None and not f.ipqs.success else 0.0,
                lambda rows: 1.0 - rows.ipqs_field("success", _flags),
            ),
            Feature(
                "device_newness",
                "1 / (1 + device age in days), age from the earliest first-seen known",
                "1/(1+age_days)",
                _device_newness,
                _device_newness_column,
            ),
            *(
                _reuse(relation, index, label)
                for relation in RELATION_NAMES
                for index, label in enumerate(window_labels)
            ),
        )
        self.names: tuple[str, ...] = tuple(f.name for f in self.features)
        # The hot path (``vector``) reads the run of Fingerprint signal flags off
        # ``obs.signals`` in one attrgetter call and the reuse block (the tail of the spec,
        # relation-major) in three numpy calls; ``vector_slow`` is the definition.
        self._reuse_start = len(self.features) - len(RELATION_NAMES) * len(window_labels)
        flags = [i for i, f in enumerate(self.features) if f.kind.startswith(_SIGNAL_FLAG)]
        if flags != list(range(flags[0], flags[-1] + 1)):
            raise ValueError("the signal flags must be one run of the feature spec")
        self._head = self.features[: flags[0]]
        flag_names = [self.features[i].kind[len(_SIGNAL_FLAG) :] for i in flags]
        self._flags = attrgetter(*flag_names)
        self._tail = self.features[flags[-1] + 1 : self._reuse_start]
        described = "\n".join(f"{f.name}\t{f.kind}\t{f.meaning}" for f in self.features)
        self.hash = hashlib.sha256(f"{FEATURE_SPEC_VERSION}\n{described}".encode()).hexdigest()
        self.version = FEATURE_SPEC_VERSION
        # What ``matrix`` computes before the reuse block: each feature's column, and the run of
        # signal flags as one block (one table of the chunk's distinct signal sets, turned
        # into floats at once: 0.8 us a row as nineteen columns, 0.4 us as one block).
        self._blocks: list[tuple[int | slice, Callable[[FeatureRows], npt.NDArray[np.float64]]]] = [
            (slice(flags[0], flags[-1] + 1), lambda rows: rows.signal_flags(flag_names))
        ]
        for index, feature in enumerate(self.features[: self._reuse_start]):
            if index in flags:
                continue
            if feature.column is None:
                raise TypeError("every feature outside the reuse block needs a column definition")
            self._blocks.append((index, feature.column))

    def row(self, item: FeatureInput) -> list[float]:
        """The features of one observation as Python floats (the serving path)."""
        values = [f.compute(item) for f in self._head]
        values += [1.0 if flag else 0.0 for flag in self._flags(item.obs.signals)]
        values += [f.compute(item) for f in self._tail]
        values += _reuse_block(item.reuse.flat)
        return values

    def vector(self, item: FeatureInput) -> npt.NDArray[np.float64]:
        return np.array(self.row(item), dtype=np.float64)

    def matrix(self, rows: FeatureRows) -> npt.NDArray[np.float64]:
        """``vector`` of every row at once (batch rescoring): a column per signal feature (the
        run of flags as one block), then the reuse block in one expression."""
        matrix = np.empty((len(rows), len(self.features)))
        for where, block in self._blocks:
            matrix[:, where] = block(rows)
        matrix[:, self._reuse_start :] = _reuse_matrix(rows.reuse_counts)
        return matrix

    def vector_slow(self, item: FeatureInput) -> npt.NDArray[np.float64]:
        """Every feature through its own ``compute``: the definition ``vector`` must match."""
        return np.fromiter((f.compute(item) for f in self.features), np.float64, len(self.features))

    def __len__(self) -> int:
        return len(self.features)
