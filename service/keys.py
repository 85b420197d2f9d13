"""Redis key templates, in one place.

Every key carries a ``{hash tag}`` so that all keys one script touches live in one cluster
slot: the outbox, its dead letters and the webhook idempotency records share ``{outbox}``
because the commit script writes them together.
"""

from __future__ import annotations

import msgspec

# Between an entity's hashed id and the name of one of its keys: the hash tag closes.
ENTITY_NAME = "}:"


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

    def entity(self, entity: str, hashed_id: str, name: str) -> str:
        """A key of one device / user / IP: every key of an entity shares its hash tag."""
        return f"{self.entity_head(entity)}{hashed_id}{ENTITY_NAME}{name}"

    def entity_head(self, entity: str) -> str:
        """What every key of an ``entity`` starts with, up to its hashed id."""
        return f"{self.prefix}:{{{entity[0]}:"

    def history(self, hashed_device: str) -> str:
        return self.entity("device", hashed_device, "scores")

    def observation(self, scope: str, request_id: str) -> str:
        """The stored observation of a request, for scoring it later by request id."""
        return f"{self.prefix}:{{r:{scope}:{request_id}}}:obs"

    @property
    def feature_log(self) -> str:
        return f"{self.prefix}:{{training}}:features"

    def labels(self, kind: str) -> str:
        """Outcome labels by ``request`` id, hashed ``user`` or hashed ``device``."""
        return f"{self.prefix}:{{labels}}:{kind}"

    @property
    def hash_key(self) -> str:
        return f"{self.prefix}:hash-key"
