"""Per-API-key rate limiting of the score API: fixed one-minute windows counted in Redis.

The counter rides in the request's reuse batch, so a limited API costs no extra round trip;
the price is that a refused request has already been counted in the reuse signals (it did
happen). Keys are counted under a hash of the API key, never the key itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from service.errors import RiskwireError
from service.keys import Keys
from service.lua import Sendable
from service.resp import packed

WINDOW_MS = 60_000
# API key ids whose current window's commands are kept packed: one per configured key in
# service; past this many (only a caller inventing ids) the memo starts over.
_MEMO_KEYS = 1024


class TooManyRequests(RiskwireError):
    status = 429
    code = "rate_limited"


def key_id(api_key: str) -> str:
    return hashlib.blake2b(api_key.encode(), digest_size=9).hexdigest()


class RateLimiter:
    def __init__(self, keys: Keys, per_minute: int) -> None:
        self._keys = keys
        self.per_minute = per_minute
        # By API key id: its current window and that window's commands, packed. A key's
        # commands are the same for a whole minute, so they are packed once per minute.
        self._packed: dict[str, tuple[int, tuple[Sendable, ...]]] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def commands(self, api_key_id: str, now_ms: int) -> tuple[Sendable, ...]:
        """Count one request in the key's current window: the counter is created with its
        expiry if it is not there yet, then incremented (INCR keeps the expiry). Plain
        commands: as a script they cost Redis more in call overhead than in work."""
        window = now_ms // WINDOW_MS
        known = self._packed.get(api_key_id)
        if known is not None and known[0] == window:
            return known[1]
        key = f"{self._keys.prefix}:{{rl:{api_key_id}}}:{window}"
        commands = (packed(("SET", key, 0, "PX", WINDOW_MS * 2, "NX")), packed(("INCR", key)))
        if len(self._packed) >= _MEMO_KEYS:
            self._packed.clear()
        self._packed[api_key_id] = (window, commands)
        return commands

    def check(self, replies: Sequence[Any], now_ms: int) -> None:
        """Raise 429 with the seconds until the window turns when the count ``commands``
        answered (their replies, in order) is over the limit."""
        count = int(replies[-1])
        if count > self.per_minute:
            retry_after = max(1, -(-(WINDOW_MS - now_ms % WINDOW_MS) // 1000))
            raise TooManyRequests(
                f"over {self.per_minute} score requests a minute for this API key",
                field="Authorization",
                headers={"Retry-After": str(retry_after)},
            )
