"""The ``tag.integrations.segment`` object a website passes to Fingerprint's JS agent.

Its shape is Fingerprint's documented Segment integration (identify / page / track / group
plus ``skipIntegration``). Free-form members (traits, properties, context) stay JSON objects.
Fields that are required for a spec (``track.event``, ``group.groupId``) are optional here:
their absence skips that one spec with a reason, it does not reject the webhook.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

JsonObject = dict[str, Any]
# As long as the score API's userId; a user id is hashed and counted like any identifier.
UserId = Annotated[str, msgspec.Meta(max_length=256)]


class _Camel(msgspec.Struct, rename="camel", frozen=True):
    pass


class IdentifyTag(_Camel, frozen=True):
    user_id: UserId | None = None
    traits: JsonObject = msgspec.field(default_factory=dict)


class PageTag(_Camel, frozen=True):
    category: str | None = None
    name: str | None = None
    properties: JsonObject = msgspec.field(default_factory=dict)
    context: JsonObject = msgspec.field(default_factory=dict)


class TrackTag(_Camel, frozen=True):
    event: str | None = None
    properties: JsonObject = msgspec.field(default_factory=dict)


class GroupTag(_Camel, frozen=True):
    group_id: str | None = None
    traits: JsonObject = msgspec.field(default_factory=dict)


class SegmentTag(_Camel, frozen=True):
    skip_integration: bool = False
    identify: IdentifyTag | None = None
    page: PageTag | None = None
    track: TrackTag | None = None
    group: GroupTag | None = None


class Integrations(msgspec.Struct, frozen=True):
    segment: SegmentTag | None = None


class Tag(msgspec.Struct, frozen=True):
    """The part of a Fingerprint tag riskwire reads; every other member is ignored."""

    integrations: Integrations | None = None

    @property
    def segment(self) -> SegmentTag | None:
        return self.integrations.segment if self.integrations else None
