"""Outcome labels and the feature log they are joined with, for retraining on real traffic.

Every scored request appends its feature vector to a capped Redis Stream (the feature log;
``RISKWIRE_FEATURE_LOG_MAX`` entries, oldest dropped). Fraud teams report outcomes with
``POST /v1/labels`` — for a request id, a user or a visitor — and
``python -m service export-training`` joins the two into a training file
``python -m service train --data`` reads. A request's own label wins over its user's, which
wins over its device's. Users and visitors are matched by their keyed hashes, as everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, cast

import msgspec
import numpy as np
from redis.asyncio import Redis

from service.errors import InvalidPayload
from service.identifiers import IdentifierPolicy
from service.keys import Keys
from service.lua import Command, Link, execute
from service.observation import Observation
from service.redis_link import PooledLink
from service.reuse import EntityRefs

LabelName = Literal[
    "fraud",
    "chargeback",
    "account_takeover",
    "abuse",
    "promo_abuse",
    "friendly_fraud",
    "legit",
    "genuine",
]
FRAUD_LABELS = frozenset(
    {"fraud", "chargeback", "account_takeover", "abuse", "promo_abuse", "friendly_fraud"}
)
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Label(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """One outcome. Exactly one of requestId, userId, visitorId says what it is about."""

    label: LabelName
    request_id: Id | None = None
    user_id: Id | None = None
    visitor_id: Id | None = None
    at: datetime | None = None
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class LabelBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    labels: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=1000)]


class LabelsRecorded(msgspec.Struct, frozen=True):
    recorded: int


class StoredLabel(msgspec.Struct, frozen=True):
    label: str
    at: datetime


class TrainingRow(msgspec.Struct, rename="camel", kw_only=True):
    request_id: str
    time: int
    label: int
    label_name: str
    label_source: str
    features: list[float]
    feature_spec_hash: str


_stored_encoder = msgspec.json.Encoder()
_stored_decoder = msgspec.json.Decoder(StoredLabel)


class LabelStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        policy: IdentifierPolicy,
        log_max: int,
        *,
        link: Link | None = None,
    ) -> None:
        self._redis = redis
        self._link = link or PooledLink(redis)
        self._keys = keys
        self._policy = policy
        self._log_max = log_max

    def feature_command(
        self,
        obs: Observation,
        refs: EntityRefs,
        features: Sequence[float],
        spec_hash: str,
    ) -> Command:
        """Append a scored request's features to the feature log (approximately capped)."""
        user = refs.user or refs.email or ""
        return (
            "XADD", self._keys.feature_log, "MAXLEN", "~", self._log_max, "*",
            "r", obs.request_id,
            "t", int(obs.time.timestamp() * 1000),
            "d", refs.device or "",
            "u", user,
            "s", spec_hash,
            "x", struct.pack(f"<{len(features)}d", *features),
        )  # fmt: skip

    async def record(self, batch: LabelBatch) -> int:
        await self._policy.ready()
        now = datetime.now(UTC)
        fields: dict[str, dict[str, bytes]] = {"request": {}, "user": {}, "device": {}}
        for index, item in enumerate(batch.labels):
            named = [
                (kind, value)
                for kind, value in (
                    ("request", item.request_id),
                    ("user", item.user_id),
                    ("device", item.visitor_id),
                )
                if value is not None
            ]
            if len(named) != 1:
                raise InvalidPayload(
                    "give exactly one of requestId, userId, visitorId",
                    field=f"$.labels[{index}]",
                )
            kind, value = named[0]
            key = {
                "request": value,
                "user": self._policy.user(value),
                "device": self._policy.device("fp", value),
            }[kind]
            if key is None:
                raise InvalidPayload(
                    "a placeholder value cannot carry a label", field=f"$.labels[{index}]"
                )
            stored = StoredLabel(item.label, item.at or now)
            fields[kind][key] = _stored_encoder.encode(stored)
        commands: list[Command] = []
        for kind, mapping in fields.items():
            if mapping:
                flat: list[str | bytes] = [v for pair in mapping.items() for v in pair]
                commands.append(("HSET", self._keys.labels(kind), *flat))
        await execute(self._link, commands)
        return len(batch.labels)

    async def export(
        self, out: Path, spec_hash: str, include_unlabeled: bool = False, chunk: int = 5000
    ) -> dict[str, int]:
        labels = {kind: await self._load(kind) for kind in ("request", "user", "device")}
        counts = {"rows": 0, "skipped_unlabeled": 0, "skipped_other_spec": 0}
        encoder = msgspec.json.Encoder()
        start = "-"
        with out.open("wb") as sink:
            while True:
                entries = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    await self._redis.xrange(self._keys.feature_log, min=start, count=chunk),
                )
                if start != "-":
                    entries = entries[1:]  # the range is inclusive of the last id read
                if not entries:
                    break
                for entry_id, entry in entries:
                    start = entry_id.decode()
                    if entry[b"s"].decode() != spec_hash:
                        counts["skipped_other_spec"] += 1
                        continue
                    found = self._match(labels, entry)
                    if found is None and not include_unlabeled:
                        counts["skipped_unlabeled"] += 1
                        continue
                    name, source = found or ("", "none")
                    row = TrainingRow(
                        request_id=entry[b"r"].decode(),
                        time=int(entry[b"t"]),
                        label=int(name in FRAUD_LABELS) if found else -1,
                        label_name=name,
                        label_source=source,
                        features=np.frombuffer(entry[b"x"], dtype="<f8").tolist(),
                        feature_spec_hash=spec_hash,
                    )
                    sink.write(encoder.encode(row) + b"\n")
                    counts["rows"] += 1
        return counts

    @staticmethod
    def _match(
        labels: dict[str, dict[str, StoredLabel]], entry: dict[bytes, bytes]
    ) -> tuple[str, str] | None:
        for kind, field in (("request", b"r"), ("user", b"u"), ("device", b"d")):
            key = entry[field].decode()
            if key and key in labels[kind]:
                return labels[kind][key].label, kind
        return None

    async def _load(self, kind: str) -> dict[str, StoredLabel]:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.labels(kind)))
        return {k.decode(): _stored_decoder.decode(v) for k, v in raw.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service export-training``."""
    from service.app import connect_redis, identifier_policy, load_model
    from service.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m service export-training")
    parser.add_argument("--output", type=Path, default=Path("var/training.jsonl"))
    parser.add_argument("--include-unlabeled", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ)
    spec, _, _ = load_model(settings)

    async def run() -> dict[str, int]:
        redis = connect_redis(settings, max_connections=2)
        try:
            keys = Keys(settings.redis_prefix)
            store = LabelStore(
                redis, keys, identifier_policy(settings, redis, keys), settings.feature_log_max
            )
            return await store.export(args.output, spec.hash, args.include_unlabeled)
        finally:
            await redis.aclose(close_connection_pool=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    counts = asyncio.run(run())
    print(f"wrote {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
