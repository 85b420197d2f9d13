"""Where batches of commands travel: one shared, pipelined connection, or redis-py's pool.

Request handlers send one small batch each (a few ``EVALSHA`` and writes). Checking a
connection out of a pool per batch, arming a timeout per reply and waking up once per reply
cost more CPU than the batch's own work, so the request path shares one connection instead:

- batches written in the same event-loop turn leave in one ``send``;
- replies are parsed by hiredis as they arrive and handed back in order (Redis answers a
  connection's commands in the order it received them), one wake-up per batch;
- one timer watches the oldest unanswered batch: past its deadline the connection is
  presumed stuck, every waiting batch fails with ``TimeoutError`` and the next batch
  reconnects. A lost connection fails every waiting batch with ``ConnectionError``.

Both errors are redis-py's, so callers (and the 503 handler) see one family of exceptions
whichever link carried the batch. Blocking commands (``XREADGROUP BLOCK``) must not use
the shared connection: they would hold up every batch behind them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.lua import Command, Sendable, pack


class PooledLink:
    """A batch on a connection of a redis-py pool (tools, tests, the forwarder's client)."""

    def __init__(self, redis: Redis) -> None:
        self._pool = redis.connection_pool

    async def round_trip(self, commands: Sequence[Sendable]) -> list[Any]:
        connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
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
            await self._pool.release(connection)


@dataclass(slots=True)
class _Waiting:
    future: asyncio.Future[list[Any]]
    expected: int
    deadline: float
    replies: list[Any] = field(default_factory=list)


def _error(value: hiredis.ReplyError) -> Exception:
    """redis-py's exception for an error reply (NOSCRIPT -> NoScriptError and so on)."""
    error: Exception = BaseParser.parse_error(str(value))  # type: ignore[no-untyped-call]
    return error


class _Wire(asyncio.Protocol):
    """One connection's bytes: parses replies and hands them to the waiting batches."""

    def __init__(self, link: MultiplexedLink, loop: asyncio.AbstractEventLoop) -> None:
        self._link = link
        # Kept: ``asyncio.get_running_loop()`` makes a getpid system call each time on
        # Python 3.11, once per batch on the request path.
        self.loop = loop
        self._reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[_Waiting] = deque()
        self.outgoing: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self.waiting
        while (value := reader.gets()) is not False:
            if not waiting:
                # A reply nobody asked for: the stream is out of step; start again.
                self.fail(RedisConnectionError("unexpected reply from Redis"))
                return
            head = waiting[0]
            # Only a command's own reply is checked for an error: none of the batches sent
            # here (scripts, plain commands, no MULTI) nests one inside an array.
            head.replies.append(_error(value) if isinstance(value, hiredis.ReplyError) else value)
            if len(head.replies) == head.expected:
                waiting.popleft()
                if not head.future.done():  # its caller may have been cancelled
                    head.future.set_result(head.replies)

    def flush(self) -> None:
        data, self.outgoing = b"".join(self.outgoing), []
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def fail(self, error: Exception) -> None:
        if self.closed:
            return
        self.closed = True
        self._link.forget(self)
        while self.waiting:
            waiting = self.waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


def _consume_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class MultiplexedLink:
    """One pipelined connection shared by every concurrent batch of this process."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._timeout_s = timeout_s
        self._wire: _Wire | None = None
        self._connecting: asyncio.Task[_Wire] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def round_trip(self, commands: Sequence[Sendable]) -> list[Any]:
        # Packed before anything is queued: a batch that cannot be packed must not leave a
        # waiting entry behind, which would take the next batch's replies.
        if not commands:  # nothing to send: no reply would ever settle its entry
            return []
        packed = pack(commands)
        wire = self._wire
        if wire is None:
            wire = await self._connect()
            if wire.closed:  # lost between connecting and now
                raise RedisConnectionError("connection to Redis lost")
        loop = wire.loop
        future: asyncio.Future[list[Any]] = loop.create_future()
        wire.waiting.append(_Waiting(future, len(commands), loop.time() + self._timeout_s))
        if not wire.outgoing:
            # Every batch queued before the loop comes round leaves in one write.
            loop.call_soon(wire.flush)
        wire.outgoing.append(packed)
        if self._timer is None:
            self._timer = loop.call_at(wire.waiting[0].deadline, self._watch)
        return await future

    def _watch(self) -> None:
        self._timer = None
        wire = self._wire
        if wire is None or not wire.waiting:
            return
        loop = asyncio.get_running_loop()
        head = wire.waiting[0]
        if head.deadline <= loop.time():
            wire.fail(RedisTimeoutError(f"Redis did not answer within {self._timeout_s} s"))
            return
        self._timer = loop.call_at(head.deadline, self._watch)

    def forget(self, wire: _Wire) -> None:
        if self._wire is wire:
            self._wire = None

    async def _connect(self) -> _Wire:
        task = self._connecting
        # A finished attempt nobody cleared (every caller was cancelled) is not reused: it
        # may hold a closed connection or a stale error.
        if task is None or task.done():
            task = self._connecting = asyncio.ensure_future(self._open())
            # Its error is seen by whoever awaits it; with none left, it is not logged as lost.
            task.add_done_callback(_consume_error)
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        options = self._options
        try:
            async with asyncio.timeout(self._timeout_s):
                if "path" in options:
                    _, wire = await loop.create_unix_connection(
                        lambda: _Wire(self, loop), options["path"]
                    )
                else:
                    secure = options.get("connection_class") is SSLConnection
                    _, wire = await loop.create_connection(
                        lambda: _Wire(self, loop),
                        options.get("host", "127.0.0.1"),
                        options.get("port", 6379),
                        ssl=ssl.create_default_context() if secure else None,
                    )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
        handshake: list[Command] = []
        if options.get("password"):
            if options.get("username"):
                handshake.append(("AUTH", options["username"], options["password"]))
            else:
                handshake.append(("AUTH", options["password"]))
        if options.get("db"):
            handshake.append(("SELECT", options["db"]))
        self._wire = wire
        if handshake:
            for reply in await self.round_trip(handshake):
                # WRONGPASS and NOAUTH come back as redis-py's AuthenticationError.
                if isinstance(reply, Exception):
                    refused = RedisConnectionError(f"Redis refused the handshake: {reply}")
                    wire.fail(refused)
                    raise refused
        return wire

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._wire is not None:
            self._wire.fail(RedisConnectionError("link closed"))
