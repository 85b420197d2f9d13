"""Redis key templates, in one place.

Every key carries a ``{hash tag}`` so that all keys one script touches live in one cluster
slot: the outbox, its dead letters and the webhook idempotency records share ``{outbox}``
because the commit script writes them together.
"""

from __future__ import annotations

import msgspec


class Keys(msgspec.Struct, frozen=True):
    prefix: str

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:{{outbox}}:stream"

    @property
    def parked(self) -> str:
        return f"{self.prefix}:{{outbox}}:parked"

    def answer(self, source: str, request_id: str) -> str:
        return f"{self.prefix}:{{outbox}}:answer:{source}:{request_id}"
