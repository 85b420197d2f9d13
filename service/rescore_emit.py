"""``--emit`` for batch rescoring: identifies queued in the Segment outbox as the run goes.

Rescoring streams its input so that memory stays flat on files larger than RAM; the
identifies it re-emits must not undo that by piling up until the end. ``OutboxFeed`` takes
them one at a time and queues them in the outbox a batch at a time, so it holds one batch at
most, whatever the input's size. A run that stops half-way has queued what it flushed; the
messageIds are deterministic, so running it again sends the same ids, which Segment
deduplicates.

The rescorer is synchronous (CPU-bound, one chunk after another) and the outbox speaks
redis.asyncio: the feed keeps a private event loop and runs each flush to completion on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

from redis.exceptions import RedisError

from service.app import connect_redis
from service.keys import Keys
from service.outbox import Outbox
from service.settings import Settings

EMIT_BATCH = 2000  # messages per flush: an identify is ~0.6 KB, so ~1 MB held at most
T = TypeVar("T")


class EmitError(RuntimeError):
    """The outbox could not take the identifies (Redis down or refusing)."""


class OutboxFeed:
    """Collects identifies (``append``) and queues them in the outbox ``batch`` at a time.

    Use it as a context manager: entering checks that Redis answers (before any rescoring
    is spent); leaving queues the rest, unless the run failed, and closes the connection."""

    def __init__(self, settings: Settings, batch: int = EMIT_BATCH) -> None:
        if batch < 1:
            raise ValueError("a batch holds at least one message")
        self._batch = batch
        self._loop = asyncio.new_event_loop()
        self._redis = connect_redis(settings, max_connections=2)
        self._outbox = Outbox(self._redis, Keys(settings.redis_prefix), settings.idempotency_ttl_s)
        self._pending: list[bytes] = []

    def __enter__(self) -> OutboxFeed:
        try:
            self._run(self._redis.ping(), "did not answer")
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self.flush()
        finally:
            self._close()

    def append(self, message: bytes) -> None:
        self._pending.append(message)
        if len(self._pending) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Queue what has been collected."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._run(self._outbox.enqueue(batch), "refused the identifies")

    def _run(self, call: Awaitable[T], failed: str) -> T:
        try:
            return self._loop.run_until_complete(call)
        except (RedisError, OSError) as exc:
            # Not the URL: it may carry a password.
            raise EmitError(f"--emit: Redis (RISKWIRE_REDIS_URL) {failed}: {exc}") from None

    def _close(self) -> None:
        self._loop.run_until_complete(self._redis.aclose(close_connection_pool=True))
        self._loop.close()
