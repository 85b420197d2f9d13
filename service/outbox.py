"""The durable outbox: Segment messages in a Redis Stream, read by the forwarder's group.

A webhook's messages and its remembered answer are written by one Lua script, so either
both exist or neither does: a retried delivery finds the answer and emits nothing again,
and two concurrent deliveries of one request id cannot both enqueue. Entries are acked
and deleted only after Segment (or the sink) took them; failures stay pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service.keys import Keys
from service.lua import Command, Link, LuaScript, execute
from service.redis_link import PooledLink

GROUP = "segment"
FIELD = b"m"

_COMMIT = """
local previous = redis.call('GET', KEYS[1])
if previous then
  return {0, previous}
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {1, ARGV[1]}
"""

_PARK = """
redis.call('XADD', KEYS[2], '*', 'm', ARGV[2], 'error', ARGV[3], 'id', ARGV[1])
redis.call('XACK', KEYS[1], ARGV[4], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


_REPLAY = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local fields = found[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'm' then redis.call('XADD', KEYS[2], '*', 'm', fields[i + 1]) end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


class OutboxStats(msgspec.Struct, frozen=True, rename="camel"):
    length: int  # entries not yet acknowledged (new or in flight)
    pending: int  # read by a forwarder, not yet acknowledged
    parked: int  # refused by Segment, waiting for a replay or a purge
    consumers: int
    # Age of the oldest message not yet delivered (its stream id is Redis's clock at XADD),
    # by Redis's clock; 0 when the outbox is empty.
    lag_seconds: float = 0.0


class Entry(msgspec.Struct, frozen=True):
    id: bytes
    message: bytes


def _message(fields: list[bytes] | None) -> bytes:
    """The message of an entry's flat field list; b"" for a pending id whose entry was
    deleted (it comes back with no fields)."""
    if fields:
        for index in range(0, len(fields) - 1, 2):
            if fields[index] == FIELD:
                return fields[index + 1]
    return b""


class Outbox:
    def __init__(
        self, redis: Redis, keys: Keys, answer_ttl_s: int, *, link: Link | None = None
    ) -> None:
        self._redis = redis
        self._link = link or PooledLink(redis)
        # Blocking reads never go through a shared link: they would hold up every batch
        # queued behind them.
        self._reads = PooledLink(redis)
        self._keys = keys
        self._answer_ttl_s = answer_ttl_s
        self._commit = LuaScript(_COMMIT)
        self._park = LuaScript(_PARK)
        self._replay = LuaScript(_REPLAY)

    def recall_command(self, scope: str, request_id: str) -> Command:
        """Read the answer already given for this request id (nil if none), as a command
        that rides in another batch."""
        return ("GET", self._keys.answer(scope, request_id))

    async def commit(
        self,
        scope: str,
        request_id: str,
        answer: bytes,
        messages: Sequence[bytes],
        *,
        also: Sequence[Command] = (),
        also_scripts: Sequence[LuaScript] = (),
    ) -> tuple[bool, bytes]:
        """Enqueue ``messages`` and remember ``answer``, unless the request id was seen.

        ``also`` adds further (idempotent) writes to the same round trip. Returns
        (fresh, answer): the stored answer wins over ours for a repeated id.
        """
        keys = [self._keys.answer(scope, request_id), self._keys.outbox]
        args: list[bytes | int] = [answer, self._answer_ttl_s, *messages]

        commands = [self._commit.call(keys, args), *also]
        replies = await execute(self._link, commands, [self._commit, *also_scripts])
        fresh, stored = replies[0]
        return bool(fresh), cast(bytes, stored)

    async def enqueue(self, messages: Sequence[bytes], batch: int = 500) -> int:
        """Append ``messages`` (already encoded) to the outbox, a batch per round trip."""
        for start in range(0, len(messages), batch):
            commands: list[Command] = [
                ("XADD", self._keys.outbox, "*", "m", m) for m in messages[start : start + batch]
            ]
            await execute(self._link, commands)
        return len(messages)

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._keys.outbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block_ms: int, *, pending: bool) -> list[Entry]:
        """New entries for ``consumer`` or, with ``pending``, those it read and never acked."""
        command: list[str | int] = ["XREADGROUP", "GROUP", GROUP, consumer, "COUNT", count]
        if not pending:
            command += ["BLOCK", block_ms]
        command += ["STREAMS", self._keys.outbox, "0" if pending else ">"]
        # The raw reply, not redis-py's parsed one: its per-entry dicts cost the forwarder
        # more CPU than the rest of a message's delivery.
        try:
            [reply] = await execute(self._reads, [tuple(command)])
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        if not reply:  # nothing arrived within the block
            return []
        # RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries].
        streams = reply.values() if isinstance(reply, dict) else [pair[1] for pair in reply]
        return [
            Entry(entry_id, _message(fields)) for items in streams for entry_id, fields in items
        ]

    async def ack(self, ids: Sequence[bytes]) -> None:
        if not ids:
            return
        outbox = self._keys.outbox
        # MULTI / EXEC: an entry is acked and deleted together, or neither.
        *_, done = await execute(
            self._link,
            [("MULTI",), ("XACK", outbox, GROUP, *ids), ("XDEL", outbox, *ids), ("EXEC",)],
        )
        # A command failing inside the transaction answers in EXEC's reply, not on its own.
        for reply in done:
            if isinstance(reply, Exception):
                raise reply

    async def park(self, entry: Entry, error: str) -> None:
        """Move one message Segment refused to the dead-letter stream, atomically."""
        keys = [self._keys.outbox, self._keys.parked]
        args: list[str | bytes] = [entry.id, entry.message, error, GROUP]
        await execute(self._link, [self._park.call(keys, args)], [self._park])

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries another consumer read and left unacked for ``min_idle_ms`` (it crashed,
        or its name changed with its host): this consumer takes them over."""
        command = ("XAUTOCLAIM", self._keys.outbox, GROUP, consumer, min_idle_ms, "0-0")
        try:
            [reply] = await execute(self._reads, [(*command, "COUNT", count)])
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return []
        # [next start id, claimed entries, ids of deleted entries dropped from the group]
        claimed = cast(list[list[Any]], reply[1])
        return [Entry(entry_id, _message(fields)) for entry_id, fields in claimed]

    async def stats(self) -> OutboxStats:
        try:
            info: list[dict[str, Any]] = await self._redis.xinfo_groups(self._keys.outbox)
        except ResponseError:  # no stream yet
            info = []
        group = next((g for g in info if g["name"] in (GROUP, GROUP.encode())), None)
        oldest = cast(list[tuple[bytes, Any]], await self._redis.xrange(self._keys.outbox, count=1))
        lag = 0.0
        if oldest:
            seconds, micros = await self._redis.time()
            added_ms = int(oldest[0][0].split(b"-")[0])
            lag = max(0, seconds * 1000 + micros // 1000 - added_ms) / 1000
        return OutboxStats(
            lag_seconds=lag,
            length=int(await self._redis.xlen(self._keys.outbox)),
            pending=int(group["pending"]) if group else 0,
            parked=int(await self._redis.xlen(self._keys.parked)),
            consumers=int(group["consumers"]) if group else 0,
        )

    async def replay_parked(self, ids: Sequence[bytes] | None = None) -> int:
        """Put parked messages (all, or ``ids``) back in the outbox for another attempt."""
        if ids is None:
            ids = [entry_id for entry_id, _ in await self.parked(count=100_000)]
        if not ids:
            return 0
        keys = [self._keys.parked, self._keys.outbox]
        commands = [self._replay.call(keys, [entry_id]) for entry_id in ids]
        return sum(await execute(self._link, commands, [self._replay]))

    async def purge_parked(self, ids: Sequence[bytes] | None = None) -> int:
        """Drop parked messages (all, or ``ids``) for good."""
        if ids is None:
            count = int(await self._redis.xlen(self._keys.parked))
            await self._redis.delete(self._keys.parked)
            return count
        return int(await self._redis.xdel(self._keys.parked, *ids)) if ids else 0

    async def length(self) -> int:
        return int(await self._redis.xlen(self._keys.outbox))

    async def parked(self, count: int = 100) -> list[tuple[bytes, dict[bytes, bytes]]]:
        items = await self._redis.xrange(self._keys.parked, count=count)
        return cast(list[tuple[bytes, dict[bytes, bytes]]], items)
