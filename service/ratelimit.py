"""Per-API-key rate limiting of the score API: fixed one-minute windows counted in Redis.

The counter rides in the request's reuse batch, so a limited API costs no extra round trip;
the price is that a refused request has already been counted in the reuse signals (it did
happen). Keys are counted under a hash of the API key, never the key itself.
"""

from __future__ import annotations

import hashlib

from service.errors import RiskwireError
from service.keys import Keys
from service.lua import Command, LuaScript

WINDOW_MS = 60_000

_COUNT = LuaScript(
    """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""
)


class TooManyRequests(RiskwireError):
    status = 429
    code = "rate_limited"


def key_id(api_key: str) -> str:
    return hashlib.blake2b(api_key.encode(), digest_size=9).hexdigest()


class RateLimiter:
    def __init__(self, keys: Keys, per_minute: int) -> None:
        self._keys = keys
        self.per_minute = per_minute
        self.scripts = [_COUNT]

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def command(self, api_key_id: str, now_ms: int) -> Command:
        window = now_ms // WINDOW_MS
        key = f"{self._keys.prefix}:{{rl:{api_key_id}}}:{window}"
        return _COUNT.call([key], [WINDOW_MS * 2])

    def check(self, count: int, now_ms: int) -> None:
        """Raise 429 with the seconds until the window turns when ``count`` is over."""
        if count > self.per_minute:
            retry_after = max(1, -(-(WINDOW_MS - now_ms % WINDOW_MS) // 1000))
            raise TooManyRequests(
                f"over {self.per_minute} score requests a minute for this API key",
                field="Authorization",
                headers={"Retry-After": str(retry_after)},
            )
