"""What riskwire remembers per device and per request besides the reuse counts.

- the last scores of each device (for ``GET /v1/visitors/{id}``), a sorted set of entries by
  event time, trimmed to the configured length;
- each scored observation by request id (for ``POST /v1/score`` with only a requestId, when
  the webhook arrived first), with a TTL.

Writes are staged on a pipeline the caller is already sending, so they cost no round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from service.keys import Keys
from service.observation import Observation

Stage = Callable[[Pipeline], Any]


class HistoryEntry(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    request_id: str
    source: str
    time: datetime
    score: int
    level: str
    action: str
    reasons: list[str]
    model_version: str


_entry_encoder = msgspec.json.Encoder()
_entry_decoder = msgspec.json.Decoder(HistoryEntry)
_obs_encoder = msgspec.msgpack.Encoder()
_obs_decoder = msgspec.msgpack.Decoder(Observation)


class Memory:
    def __init__(
        self, redis: Redis, keys: Keys, *, history_length: int, history_ttl_ms: int, obs_ttl_s: int
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._length = history_length
        self._history_ttl_ms = history_ttl_ms
        self._obs_ttl_s = obs_ttl_s

    def stage_history(self, pipe: Pipeline, device: str, entry: HistoryEntry) -> None:
        key = self._keys.history(device)
        pipe.zadd(key, {_entry_encoder.encode(entry): int(entry.time.timestamp() * 1000)})
        pipe.zremrangebyrank(key, 0, -(self._length + 1))
        pipe.pexpire(key, self._history_ttl_ms)

    def stage_observation(self, pipe: Pipeline, obs: Observation) -> None:
        key = self._keys.observation(obs.idempotency_scope, obs.request_id)
        pipe.set(key, _obs_encoder.encode(obs), ex=self._obs_ttl_s)

    async def run(self, *stages: Stage) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stage in stages:
                stage(pipe)
            await pipe.execute()

    async def recent(self, device: str) -> list[HistoryEntry]:
        raw = cast(
            list[bytes], await self._redis.zrange(self._keys.history(device), 0, -1, desc=True)
        )
        return [_entry_decoder.decode(item) for item in raw]

    async def observation(self, scope: str, request_id: str) -> Observation | None:
        raw = cast(bytes | None, await self._redis.get(self._keys.observation(scope, request_id)))
        return None if raw is None else _obs_decoder.decode(raw)
