"""Observation → Segment specs, following Fingerprint's documented Segment integration.

Contract (seed 000): nothing without ``tag.integrations.segment``; nothing when
``skipIntegration`` is true; identify always; page / track / group only when given, track
only with ``event`` and group only with ``groupId``; screen is not supported. Each message
gets a deterministic ``messageId`` (so a retried delivery dedupes at Segment), the event's
time as ``timestamp`` and ``context.library`` naming riskwire.

The risk rides along as flat ``fraud_*`` traits on identify and the same keys in the
``context`` of page / track / group. riskwire's values are merged last: a website cannot
set its own fraud score through the tag.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from service import __version__
from service.model import Risk
from service.observation import Observation

SpecType = Literal["identify", "page", "track", "group"]

# Segment's HTTP Tracking API rejects messages over 32 KB.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_MESSAGE_ID_CHARS = 99
LIBRARY = {"name": "riskwire", "version": __version__}


class _Message(msgspec.Struct, tag_field="type", rename="camel", omit_defaults=True, kw_only=True):
    message_id: str
    anonymous_id: str | None = None
    user_id: str | None = None
    timestamp: str
    context: dict[str, Any]


class Identify(_Message, tag="identify", kw_only=True):
    traits: dict[str, Any]


class Page(_Message, tag="page", kw_only=True):
    category: str | None = None
    name: str | None = None
    properties: dict[str, Any]


class Track(_Message, tag="track", kw_only=True):
    event: str
    properties: dict[str, Any]


class Group(_Message, tag="group", kw_only=True):
    group_id: str
    traits: dict[str, Any]


SegmentMessage = Identify | Page | Track | Group


class Skipped(msgspec.Struct, frozen=True):
    type: str
    reason: str


class Specs(msgspec.Struct, frozen=True):
    """Encoded messages ready for the outbox, and the specs that were not built, with why."""

    messages: list[tuple[SpecType, bytes]]
    skipped: list[Skipped]

    @property
    def emitted(self) -> list[str]:
        return [spec for spec, _ in self.messages]


_encoder = msgspec.json.Encoder()


def iso8601(moment: datetime) -> str:
    """``moment`` in UTC to the millisecond (truncated), as Segment's timestamps are written:
    ``astimezone(UTC).isoformat(timespec="milliseconds")`` with ``Z`` (a test holds the two
    equal), formatted by hand at under half its cost: a webhook writes four of them."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # %-formatting: 0.8 us here against 1.4 us for the same f-string.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )


def message_id(scope: str, request_id: str, spec: str) -> str:
    """Stable per (request, spec): a redelivered webhook produces the same ids."""
    readable = f"rw-{scope}-{request_id}-{spec}"
    if len(readable) <= MAX_MESSAGE_ID_CHARS:
        return readable
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:48]
    return f"rw-{scope}-h{digest}-{spec}"


def build_specs(obs: Observation, fraud: dict[str, Any] | None = None) -> Specs:
    tag = obs.segment
    if tag is None or tag.skip_integration:
        return Specs([], [])
    fraud = fraud or {}

    user_id = tag.identify.user_id if tag.identify else None
    timestamp = iso8601(obs.time)
    scope = obs.idempotency_scope

    def common(spec: SpecType) -> dict[str, Any]:
        return {
            "message_id": message_id(scope, obs.request_id, spec),
            "anonymous_id": obs.visitor_id,
            "user_id": user_id,
            "timestamp": timestamp,
        }

    built: list[tuple[SpecType, SegmentMessage]] = []
    skipped: list[Skipped] = []

    traits: dict[str, Any] = dict(tag.identify.traits) if tag.identify else {}
    traits.update(fraud)
    traits["visitorId"] = obs.visitor_id
    if obs.first_seen_at is not None:
        traits["createdAt"] = iso8601(obs.first_seen_at)
    else:
        # The webhook's createdAt wins over a trait of the same name; absent means absent.
        traits.pop("createdAt", None)
    built.append(
        ("identify", Identify(**common("identify"), context={"library": LIBRARY}, traits=traits))
    )

    if tag.page is not None:
        context: dict[str, Any] = {"ip": obs.ip, "browserDetails": obs.browser}
        context["incognito"] = obs.incognito
        context["confidenceScore"] = obs.confidence
        context["requestId"] = obs.request_id
        context = {k: v for k, v in context.items() if v is not None}
        context.update(tag.page.context)
        context.update(fraud)
        context["library"] = LIBRARY
        properties: dict[str, Any] = {"url": obs.url} if obs.url is not None else {}
        properties.update(tag.page.properties)
        page = Page(
            **common("page"),
            context=context,
            category=tag.page.category,
            name=tag.page.name,
            properties=properties,
        )
        built.append(("page", page))

    if tag.track is not None:
        if tag.track.event:
            track = Track(
                **common("track"),
                context={**fraud, "library": LIBRARY},
                event=tag.track.event,
                properties=dict(tag.track.properties),
            )
            built.append(("track", track))
        else:
            skipped.append(Skipped("track", "track.event is required to send a track spec"))

    if tag.group is not None:
        if tag.group.group_id:
            group = Group(
                **common("group"),
                context={**fraud, "library": LIBRARY},
                group_id=tag.group.group_id,
                traits=dict(tag.group.traits),
            )
            built.append(("group", group))
        else:
            skipped.append(Skipped("group", "group.groupId is required to send a group spec"))

    return _encoded(built, skipped)


def build_ipqs_specs(obs: Observation, user_id: str | None, fraud: dict[str, Any]) -> Specs:
    """An identify carrying the fraud traits for the user an IPQS result names, if any.

    ``user_id`` is the result's user after identifier hygiene: a placeholder such as
    ``anonymous`` would merge unrelated Segment profiles, so it sends nothing.
    """
    if user_id is None:
        reason = "the IPQS result names no usable user id (userID custom variable)"
        return Specs([], [Skipped("identify", reason)])
    identify = Identify(
        message_id=message_id(obs.idempotency_scope, obs.request_id, "identify"),
        user_id=user_id,
        timestamp=iso8601(obs.time),
        context={"library": LIBRARY},
        traits=dict(fraud),
    )
    return _encoded([("identify", identify)], [])


def rescore_identify(
    obs: Observation, risk: Risk, prefix: str, scored_at: datetime
) -> bytes | None:
    """The identify carrying a re-scored verdict, dated at the event (a historic call, as
    Segment documents for imports), with a messageId stable per model and request."""
    if obs.user_id is None and obs.visitor_id is None:
        return None
    traits: dict[str, Any] = {
        f"{prefix}score": risk.score,
        f"{prefix}level": risk.level,
        f"{prefix}action": risk.action,
        f"{prefix}reasons": [r.code for r in risk.reasons],
        f"{prefix}model_version": risk.model_version,
        f"{prefix}scored_at": iso8601(scored_at),
    }
    scope = f"rescore-{risk.model_version}-{obs.idempotency_scope}"
    message = Identify(
        message_id=message_id(scope, obs.request_id, "identify"),
        anonymous_id=obs.visitor_id if obs.source != "ipqs" else None,
        user_id=obs.user_id,
        timestamp=iso8601(obs.time),
        context={"library": LIBRARY},
        traits=traits,
    )
    return _encoder.encode(message)


def _encoded(built: list[tuple[SpecType, SegmentMessage]], skipped: list[Skipped]) -> Specs:
    messages: list[tuple[SpecType, bytes]] = []
    for spec, message in built:
        encoded = _encoder.encode(message)
        if len(encoded) > MAX_MESSAGE_BYTES:
            skipped.append(
                Skipped(spec, f"message is {len(encoded)} bytes, over Segment's 32 KB limit")
            )
        else:
            messages.append((spec, encoded))
    return Specs(messages, skipped)
