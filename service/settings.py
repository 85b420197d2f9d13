"""Runtime configuration: one frozen struct, built from ``RISKWIRE_*`` variables once.

Nothing here reads the environment at import time; ``Settings.from_env`` is called by the
entry points (``python -m service run``, the ASGI factory) and the result is passed down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

ENV_PREFIX = "RISKWIRE_"


class SettingsError(ValueError):
    """An environment variable holds a value riskwire cannot use."""


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """``90s``, ``15m``, ``24h``, ``30d`` (or bare seconds) in milliseconds."""
    text = text.strip().lower()
    unit = text[-1:] if text[-1:] in _UNITS_MS else "s"
    number = text[:-1] if text[-1:] in _UNITS_MS else text
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return int(number) * _UNITS_MS[unit]


def duration_label(ms: int) -> str:
    """A window's canonical name: 3600000 -> ``1h``, 86400000 -> ``24h``, 30 days -> ``30d``."""
    if ms % _UNITS_MS["d"] == 0 and ms >= 2 * _UNITS_MS["d"]:
        return f"{ms // _UNITS_MS['d']}d"
    for unit in ("h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


class Secret:
    """A string that never shows itself in repr, str, logs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob riskwire has. Field ``x`` is read from ``RISKWIRE_X``."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every key riskwire writes starts with this, so several deployments (or test runs)
    # can share one Redis without touching each other's data.
    redis_prefix: str = "rw"
    redis_max_connections: int = 64
    # Kept well under Fingerprint's 3 s webhook deadline so a stuck Redis turns into a
    # clear 503 (which Fingerprint retries) instead of a timeout.
    redis_timeout_s: float = 1.0

    fingerprint_secret: Secret | None = None
    api_keys: tuple[Secret, ...] = ()
    # Keys of the outbox admin routes; checkout keys never open them. Empty: those routes
    # answer 403, so a deployment that never set this exposes no admin surface.
    admin_api_keys: tuple[Secret, ...] = ()
    max_body_bytes: int = 64 * 1024
    # Fingerprint retries a failed delivery once, 5 minutes later; Segment dedupes
    # messageIds for 24 h. One day of remembered answers covers both.
    idempotency_ttl_s: int = 24 * 3600

    segment_write_key: Secret | None = None
    segment_endpoint: str = "https://api.segment.io"
    segment_timeout_s: float = 10.0
    sink_path: str = "var/segment-sink.jsonl"

    forwarder_enabled: bool = True
    # One consumer per process (host and pid): workers of one server never share a name, so
    # none re-reads another's in-flight messages; a dead process's are taken over later.
    forwarder_consumer: str = msgspec.field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}"
    )
    forwarder_batch_max_messages: int = 500
    forwarder_block_ms: int = 1000
    # After a read that did not fill a batch, wait this long before the next: under load
    # batches then fill up instead of leaving a few messages at a time (each batch costs a
    # read, a post or sink write and an ack).
    forwarder_linger_ms: int = 100
    # Messages another consumer read and left unacked this long are taken over.
    forwarder_claim_idle_s: float = 60.0
    retry_base_s: float = 0.5
    retry_cap_s: float = 60.0
    # On shutdown, how long the forwarder may keep delivering what is still queued (0 = not
    # at all); what it cannot deliver in time stays pending in Redis for the next start.
    shutdown_flush_s: float = 5.0
    # /ready answers 503 once the oldest undelivered message is older than this (0 = never).
    # Generous on purpose: while Segment is down every instance lags alike, and taking all
    # of them out of rotation would refuse webhooks the outbox could have kept.
    ready_max_outbox_lag_s: float = 900.0

    # Identifiers (user ids, emails, IPs, device ids) are stored as keyed hashes (BLAKE2b
    # MAC) under this key.
    # Unset: a random key is generated once and kept in Redis (see README, "Privacy").
    hash_key: Secret | None = None
    reuse_windows: tuple[str, ...] = ("1h", "24h", "30d")
    reuse_cap: int = 1000
    # Placeholder values never counted as identifiers, on top of Segment's recommended
    # blocked values (zeroes and dashes, -1, null, anonymous, undefined, empty).
    blocked_identifiers: tuple[str, ...] = ("void", "abc123")
    observation_ttl_s: int = 24 * 3600
    ipqs_join_window_s: int = 3600
    score_history: int = 20
    # Score requests per API key per minute; 0 turns the limit off.
    rate_limit_per_minute: int = 60_000
    # Scored requests' features kept for retraining (~0.7 KB each), oldest dropped first.
    feature_log_max: int = 500_000

    model_path: str = ""
    review_threshold: float | None = None
    block_threshold: float | None = None
    trait_prefix: str = "fraud_"
    allow_visitors: tuple[str, ...] = ()
    deny_visitors: tuple[str, ...] = ()
    allow_users: tuple[str, ...] = ()
    deny_users: tuple[str, ...] = ()
    allow_ips: tuple[str, ...] = ()
    deny_ips: tuple[str, ...] = ()

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    _secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"fingerprint_secret", "segment_write_key", "hash_key"}
    )
    _key_lists: ClassVar[tuple[str, ...]] = ("api_keys", "admin_api_keys")

    def __post_init__(self) -> None:
        if "{" in self.redis_prefix or "}" in self.redis_prefix:
            # A brace in the prefix would become the cluster hash tag of every key.
            raise SettingsError("RISKWIRE_REDIS_PREFIX must not contain '{' or '}'")
        checks = {
            "max_body_bytes": self.max_body_bytes > 0,
            "idempotency_ttl_s": self.idempotency_ttl_s > 0,
            "redis_max_connections": self.redis_max_connections > 0,
            "redis_timeout_s": self.redis_timeout_s > 0,
            "segment_timeout_s": self.segment_timeout_s > 0,
            "forwarder_batch_max_messages": 0 < self.forwarder_batch_max_messages <= 2500,
            "forwarder_block_ms": self.forwarder_block_ms > 0,
            "forwarder_linger_ms": self.forwarder_linger_ms >= 0,
            "forwarder_claim_idle_s": self.forwarder_claim_idle_s > 0,
            "retry_base_s": self.retry_base_s > 0,
            "retry_cap_s": self.retry_cap_s >= self.retry_base_s,
            "shutdown_flush_s": self.shutdown_flush_s >= 0,
            "ready_max_outbox_lag_s": self.ready_max_outbox_lag_s >= 0,
            "port": 0 < self.port < 65536,
            "reuse_cap": self.reuse_cap > 0,
            "observation_ttl_s": self.observation_ttl_s > 0,
            "ipqs_join_window_s": self.ipqs_join_window_s > 0,
            "score_history": self.score_history > 0,
            "rate_limit_per_minute": self.rate_limit_per_minute >= 0,
            "feature_log_max": self.feature_log_max > 0,
            "review_threshold": self.review_threshold is None or 0 <= self.review_threshold <= 100,
            "block_threshold": self.block_threshold is None or 0 <= self.block_threshold <= 100,
        }
        for name, ok in checks.items():
            if not ok:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()} is out of range: {getattr(self, name)!r}"
                )
        try:
            windows = self.reuse_windows_ms
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}REUSE_WINDOWS: {exc}") from None
        if not windows or list(windows) != sorted(set(windows)):
            raise SettingsError(f"{ENV_PREFIX}REUSE_WINDOWS must be distinct and ascending")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``RISKWIRE_*`` entries of ``environ``; unset ones keep defaults."""
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            env_name = ENV_PREFIX + field.name.upper()
            raw = environ.get(env_name)
            if raw is None:
                continue
            raw = raw.strip()
            if field.name in cls._secret_fields:
                values[field.name] = Secret(raw) if raw else None
            elif field.name in cls._key_lists:
                values[field.name] = tuple(Secret(k.strip()) for k in raw.split(",") if k.strip())
            elif field.type == tuple[str, ...]:
                values[field.name] = tuple(v.strip() for v in raw.split(",") if v.strip())
            else:
                try:
                    values[field.name] = msgspec.convert(raw, field.type, strict=False)
                except msgspec.ValidationError as exc:
                    raise SettingsError(f"{env_name}: {exc}") from None
        return cls(**values)

    @property
    def reuse_windows_ms(self) -> tuple[int, ...]:
        return tuple(parse_duration_ms(w) for w in self.reuse_windows)

    @property
    def reuse_window_labels(self) -> tuple[str, ...]:
        return tuple(duration_label(ms) for ms in self.reuse_windows_ms)

    @property
    def segment_batch_url(self) -> str:
        return self.segment_endpoint.rstrip("/") + "/v1/batch"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f}={getattr(self, f)!r}" for f in self.__struct_fields__ if f not in self._key_lists
        )
        counts = ", ".join(f"{f}=<{len(getattr(self, f))} keys>" for f in self._key_lists)
        return f"Settings({shown}, {counts})"
