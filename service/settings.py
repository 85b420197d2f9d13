"""Runtime configuration: one frozen struct, built from ``RISKWIRE_*`` variables once.

Nothing here reads the environment at import time; ``Settings.from_env`` is called by the
entry points (``python -m service run``, the ASGI factory) and the result is passed down.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

ENV_PREFIX = "RISKWIRE_"


class SettingsError(ValueError):
    """An environment variable holds a value riskwire cannot use."""


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
    max_body_bytes: int = 64 * 1024
    # Fingerprint retries a failed delivery once, 5 minutes later; Segment dedupes
    # messageIds for 24 h. One day of remembered answers covers both.
    idempotency_ttl_s: int = 24 * 3600

    segment_write_key: Secret | None = None
    segment_endpoint: str = "https://api.segment.io"
    segment_timeout_s: float = 10.0
    sink_path: str = "var/segment-sink.jsonl"

    forwarder_enabled: bool = True
    forwarder_consumer: str = msgspec.field(default_factory=socket.gethostname)
    forwarder_batch_max_messages: int = 500
    forwarder_block_ms: int = 1000
    retry_base_s: float = 0.5
    retry_cap_s: float = 60.0

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    _secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"fingerprint_secret", "segment_write_key"}
    )

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
            "retry_base_s": self.retry_base_s > 0,
            "retry_cap_s": self.retry_cap_s >= self.retry_base_s,
            "port": 0 < self.port < 65536,
        }
        for name, ok in checks.items():
            if not ok:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()} is out of range: {getattr(self, name)!r}"
                )

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
            elif field.name == "api_keys":
                values[field.name] = tuple(Secret(k.strip()) for k in raw.split(",") if k.strip())
            else:
                try:
                    values[field.name] = msgspec.convert(raw, field.type, strict=False)
                except msgspec.ValidationError as exc:
                    raise SettingsError(f"{env_name}: {exc}") from None
        return cls(**values)

    @property
    def segment_batch_url(self) -> str:
        return self.segment_endpoint.rstrip("/") + "/v1/batch"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f}={getattr(self, f)!r}" for f in self.__struct_fields__ if f != "api_keys"
        )
        return f"Settings({shown}, api_keys=<{len(self.api_keys)} keys>)"
