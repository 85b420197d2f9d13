"""Lua scripts, and a lean way to send a batch of commands in one round trip.

The hot paths (reuse counts, the webhook commit, deferred history writes) send a handful of
``EVALSHA`` and plain commands per request. redis-py's ``Pipeline`` spends more CPU on its
bookkeeping (a ``SCRIPT EXISTS`` round trip per pipeline holding a script, per-command
packing and response wrappers) than the rest of a score request together, so these batches
are packed here as RESP in one pass and written to a connection of redis-py's own pool,
whose parser (hiredis), timeouts and exception types still apply.

If Redis answers NOSCRIPT (it restarted, or its script cache was flushed) the scripts are
loaded and the whole batch is sent once more: every batch sent here is idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

Arg = str | int | bytes
Command = tuple[Arg, ...]


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def call(self, keys: Sequence[str], args: Sequence[Arg]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self, redis: Redis) -> None:
        await redis.script_load(self.source)


def pack(commands: Sequence[Command]) -> bytes:
    """RESP for ``commands``, in one buffer."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def execute(
    redis: Redis, commands: Sequence[Command], scripts: Sequence[LuaScript] = ()
) -> list[Any]:
    """Send ``commands`` in one round trip; every reply, or the first error reply raised."""
    for attempt in (1, 2):
        replies = await _round_trip(redis, commands)
        errors = [r for r in replies if isinstance(r, ResponseError)]
        if not errors:
            return replies
        if attempt == 1 and scripts and all(isinstance(e, NoScriptError) for e in errors):
            for script in scripts:
                await script.load(redis)
            continue
        raise errors[0]
    raise AssertionError("unreachable")


async def _round_trip(redis: Redis, commands: Sequence[Command]) -> list[Any]:
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
    try:
        await connection.send_packed_command(pack(commands), check_health=False)
        replies: list[Any] = []
        for _ in commands:
            # Every reply is read, errors included, so the connection stays in step.
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        # A half-read connection must not go back to the pool in use.
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)
