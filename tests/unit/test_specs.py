"""Segment specs built from observations, per Fingerprint's documented mapping (seed 000)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.decode import decode_fingerprint
from service.specs import MAX_MESSAGE_BYTES, build_specs, iso8601, message_id
from tests.payloads import FULL_EXAMPLE, encode, v3, v4


def specs_of(body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    specs = build_specs(decode_fingerprint(encode(body)))
    messages: dict[str, dict[str, Any]] = {s: json.loads(raw) for s, raw in specs.messages}
    assert list(messages) == specs.emitted
    return messages, [{"type": s.type, "reason": s.reason} for s in specs.skipped]


LIBRARY = {"name": "riskwire", "version": "0.1.0"}


def test_full_example_v3_maps_every_documented_field() -> None:
    msgs, skipped = specs_of(v3(FULL_EXAMPLE))
    assert list(msgs) == ["identify", "page", "track", "group"]
    assert skipped == []
    visitor, user = "3HNey93AkBW6CRbxV6xP", "your_internal_ID_123456"
    for spec, message in msgs.items():
        assert message["type"] == spec
        assert message["anonymousId"] == visitor
        assert message["userId"] == user
        assert message["timestamp"] == "2019-10-12T07:20:50.520Z"
        assert message["messageId"] == f"rw-fp-Px6VxbRC6WBkA39yeNH3-{spec}"
        assert message["context"]["library"] == LIBRARY

    assert msgs["identify"]["traits"] == {
        "name": "Jon Doe",
        "visitorId": visitor,
        "createdAt": "2022-03-16T11:31:01.101Z",
    }

    page = msgs["page"]
    assert page["category"] == "Account"
    assert page["name"] == "Update Password"
    assert page["properties"] == {
        "url": "https://banking.example.com/signup",
        "path": "/account/password",
        "referrer": "/account/home",
    }
    assert page["context"] == {
        "ip": "216.3.128.12",
        "browserDetails": {
            "browserName": "Chrome",
            "browserMajorVersion": "73",
            "browserFullVersion": "73.0.3683.86",
            "os": "Mac OS X",
            "osVersion": "10.14.3",
            "device": "Other",
            "userAgent": "(Macintosh; Intel Mac OS X 10_14_3) Chrome/73.0.3683.86",
        },
        "incognito": False,
        "confidenceScore": 0.97,
        "requestId": "Px6VxbRC6WBkA39yeNH3",
        "trial": True,
        "library": LIBRARY,
    }

    assert msgs["track"]["event"] == "Plan Updated"
    assert msgs["track"]["properties"] == {"currency": "USD", "value": "19.99"}
    assert msgs["group"]["groupId"] == "0e8c78ea9d97a7b8185e8632"
    assert msgs["group"]["traits"] == {"name": "Fingerprint", "industry": "Tech", "employees": 110}


def test_full_example_v4_uses_tags_and_snake_case_sources() -> None:
    msgs, _ = specs_of(v4(FULL_EXAMPLE))
    assert list(msgs) == ["identify", "page", "track", "group"]
    assert msgs["identify"]["anonymousId"] == "Ibk1527CUFmcnjLwIs4A9"
    assert msgs["identify"]["traits"]["createdAt"] == "2024-02-16T16:55:55.327Z"
    assert msgs["page"]["timestamp"] == "2024-02-16T16:55:55.327Z"
    context = msgs["page"]["context"]
    assert context["ip"] == "61.127.217.15"
    assert context["requestId"] == "1708102555327.NLOjmg"
    assert context["browserDetails"]["browserName"] == "Chrome"
    assert context["browserDetails"]["osVersion"] == "7"
    assert context["confidenceScore"] == 0.97
    assert msgs["page"]["properties"]["url"] == "https://www.example.com/login?hope{this{works[!"


@pytest.mark.parametrize(
    "body",
    [
        v3(),  # the fixture's tag has no integrations
        v3(tag=None),
        v3(tag={"integrations": {"mixpanel": {"x": 1}}}),  # other integrations only
        v3({**FULL_EXAMPLE, "skipIntegration": True}),
        v4(),
        v4(tags={"integrations": {"other": {}}}),
    ],
)
def test_nothing_is_sent_without_the_segment_integration(body: dict[str, Any]) -> None:
    assert specs_of(body) == ({}, [])


@pytest.mark.parametrize("make", [v3, v4])
def test_identify_is_sent_even_when_omitted(make: Any) -> None:
    msgs, skipped = specs_of(make({}))
    assert list(msgs) == ["identify"] and skipped == []
    identify = msgs["identify"]
    assert "userId" not in identify
    assert set(identify["traits"]) == {"visitorId", "createdAt"}


def test_webhook_visitor_id_and_created_at_win_over_traits() -> None:
    tag = {"identify": {"traits": {"visitorId": "forged", "createdAt": "2000-01-01", "plan": "x"}}}
    msgs, _ = specs_of(v3(tag))
    traits = msgs["identify"]["traits"]
    assert traits == {
        "visitorId": "3HNey93AkBW6CRbxV6xP",
        "createdAt": "2022-03-16T11:31:01.101Z",
        "plan": "x",
    }


def test_missing_first_seen_omits_created_at_but_still_identifies() -> None:
    body = v3({"identify": {"traits": {"createdAt": "2000-01-01"}}})
    del body["firstSeenAt"]
    msgs, _ = specs_of(body)
    assert "createdAt" not in msgs["identify"]["traits"]
    body = v3({}, firstSeenAt={"global": "2022-03-16T11:26:45.362Z", "subscription": None})
    msgs, _ = specs_of(body)
    assert msgs["identify"]["traits"] == {"visitorId": "3HNey93AkBW6CRbxV6xP"}


def test_missing_confidence_and_incognito_are_omitted_from_page_context() -> None:
    body = v3({"page": {}})
    del body["confidence"], body["incognito"]
    msgs, _ = specs_of(body)
    context = msgs["page"]["context"]
    assert "confidenceScore" not in context and "incognito" not in context
    assert context["requestId"] == "Px6VxbRC6WBkA39yeNH3"


def test_page_context_and_properties_from_the_tag_are_merged_last() -> None:
    tag = {"page": {"context": {"ip": "10.0.0.1"}, "properties": {"url": "https://override"}}}
    msgs, _ = specs_of(v3(tag))
    assert msgs["page"]["context"]["ip"] == "10.0.0.1"
    assert msgs["page"]["properties"]["url"] == "https://override"
    assert "category" not in msgs["page"] and "name" not in msgs["page"]


def test_track_without_event_and_group_without_group_id_are_skipped_with_reasons() -> None:
    msgs, skipped = specs_of(v3({"track": {"properties": {"a": 1}}, "group": {"traits": {}}}))
    assert list(msgs) == ["identify"]
    assert skipped == [
        {"type": "track", "reason": "track.event is required to send a track spec"},
        {"type": "group", "reason": "group.groupId is required to send a group spec"},
    ]
    msgs, skipped = specs_of(v3({"track": {"event": ""}, "group": {"groupId": ""}}))
    assert [s["type"] for s in skipped] == ["track", "group"]


def test_a_message_over_32_kb_is_skipped_not_sent() -> None:
    msgs, skipped = specs_of(v3({"track": {"event": "Big", "properties": {"x": "y" * 40_000}}}))
    assert list(msgs) == ["identify"]
    assert skipped[0]["type"] == "track"
    assert "32 KB" in skipped[0]["reason"]
    assert all(len(json.dumps(m)) <= MAX_MESSAGE_BYTES for m in msgs.values())


def test_user_id_from_identify_is_on_every_spec_and_screen_is_ignored() -> None:
    tag = {**FULL_EXAMPLE, "screen": {"name": "Home"}}
    msgs, _ = specs_of(v3(tag))
    assert "screen" not in msgs
    assert {m["userId"] for m in msgs.values()} == {"your_internal_ID_123456"}


def test_message_ids_are_deterministic_and_short() -> None:
    assert message_id("fp", "abc", "page") == message_id("fp", "abc", "page")
    assert message_id("fp", "abc", "page") != message_id("fp", "abc", "track")
    long_a, long_b = (
        message_id("fp", "a" * 256, "identify"),
        message_id("fp", "b" * 256, "identify"),
    )
    assert len(long_a) < 100 and long_a != long_b
    assert long_a == message_id("fp", "a" * 256, "identify")


def test_iso8601_is_isoformat_in_utc_to_the_millisecond() -> None:
    rng = random.Random(8601)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    moments = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 3, 13, 44, 32, 594_999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),  # next year in UTC
    ]
    moments += [datetime.fromtimestamp(rng.uniform(0, 4e9), rng.choice(zones)) for _ in range(2000)]
    for moment in moments:
        expected = moment.astimezone(UTC).isoformat(timespec="milliseconds")
        assert iso8601(moment) == expected.replace("+00:00", "Z"), moment
