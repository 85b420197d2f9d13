"""What riskwire remembers per device and per request besides the reuse counts.

- the last scores of each device (for ``GET /v1/visitors/{id}``), a sorted set of entries by
  event time, trimmed to the configured length;
- each scored observation by request id (for ``POST /v1/score`` with only a requestId, when
  the webhook arrived first), with a TTL.

Writes are commands the caller adds to a batch it is already sending (no extra round trip),
or hands to ``DeferredWrites`` to send after the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import msgspec
from redis.asyncio import Redis

from service.keys import Keys
from service.lua import Command, Link, execute
from service.observation import Observation
from service.redis_link import PooledLink
from service.reuse import DEVICE_SPACES, device_set

log = logging.getLogger("riskwire.history")


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
        self,
        redis: Redis,
        keys: Keys,
        *,
        history_length: int,
        history_ttl_ms: int,
        obs_ttl_s: int,
        link: Link | None = None,
    ) -> None:
        self._redis = redis
        self._link = link or PooledLink(redis)
        self._keys = keys
        self._length = history_length
        self._history_ttl_ms = history_ttl_ms
        self._obs_ttl_s = obs_ttl_s

    def history_commands(self, device: str, entry: HistoryEntry) -> list[Command]:
        """Add ``entry`` to the device's latest scores, keep the newest ``history_length``,
        refresh the TTL. Plain commands, which Redis runs in order: as a script they cost it
        more in call overhead than the three commands' own work."""
        key = self._keys.history(device)
        time_ms = int(entry.time.timestamp() * 1000)
        return [
            ("ZADD", key, time_ms, _entry_encoder.encode(entry)),
            ("ZREMRANGEBYRANK", key, 0, -(self._length + 1)),
            ("PEXPIRE", key, self._history_ttl_ms),
        ]

    def observation_command(self, obs: Observation) -> Command:
        key = self._keys.observation(obs.idempotency_scope, obs.request_id)
        return ("SET", key, _obs_encoder.encode(obs), "EX", self._obs_ttl_s)

    async def run(self, commands: Sequence[Command]) -> None:
        await execute(self._link, commands)

    async def recent(self, device: str) -> list[HistoryEntry]:
        raw = cast(
            list[bytes], await self._redis.zrange(self._keys.history(device), 0, -1, desc=True)
        )
        return [_entry_decoder.decode(item) for item in raw]

    async def observations(self, requests: Sequence[tuple[str, str]]) -> list[Observation | None]:
        """Stored observations of (scope, request id) pairs, in one round trip."""
        if not requests:
            return []
        commands: list[Command] = [
            ("GET", self._keys.observation(scope, rid)) for scope, rid in requests
        ]
        return [
            None if raw is None else _obs_decoder.decode(raw)
            for raw in await execute(self._link, commands)
        ]

    async def devices_of(self, user: str) -> list[str]:
        """The hashed devices a (hashed) user was seen on, of every vendor, newest first."""
        commands: list[Command] = [
            (
                "ZRANGE",
                self._keys.entity("user", user, device_set(space)),
                0,
                -1,
                "REV",
                "WITHSCORES",
            )
            for space in DEVICE_SPACES
        ]
        seen: list[tuple[float, str]] = []
        for reply in await execute(self._link, commands):
            pairs = cast(list[bytes], reply)
            seen += [(float(pairs[i + 1]), pairs[i].decode()) for i in range(0, len(pairs), 2)]
        return [device for _, device in sorted(seen, key=lambda pair: -pair[0])]

    async def observation(self, scope: str, request_id: str) -> Observation | None:
        [raw] = await execute(self._link, [("GET", self._keys.observation(scope, request_id))])
        return None if raw is None else _obs_decoder.decode(raw)


class DeferredWrites:
    """Writes that may follow an answer (score history, stored observations), sent in
    batches by one background task instead of a round trip per request.

    They are conveniences, not the record: on a crash the last ~``interval_s`` of them are
    lost, and a failed batch is logged and dropped rather than retried forever.
    """

    def __init__(self, memory: Memory, *, interval_s: float = 0.05, max_batch: int = 500) -> None:
        self._memory = memory
        self._interval_s = interval_s
        self._max_batch = max_batch
        self._pending: list[Command] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, commands: Sequence[Command]) -> None:
        self._pending.extend(commands)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="riskwire-deferred-writes")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._memory.run(batch)
        except Exception as exc:
            self.dropped += len(batch)
            log.warning("dropped %d deferred writes: %s", len(batch), type(exc).__name__)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            await self.flush()
