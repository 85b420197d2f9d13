"""Every Fingerprint fixture either decodes into an Observation or fails with a clear 4xx."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.decode import (
    _name_fault,
    decode_event,
    decode_event_unprobed,
    decode_fingerprint,
    well_formed,
)
from service.errors import InvalidPayload, MalformedBody, RiskwireError
from service.observation import Observation
from tests.payloads import FIXTURES, FULL_EXAMPLE, encode, v3, v4

FP = FIXTURES / "fingerprint"
V4_EVENTS = [
    "get_event_200",
    "get_event_200_with_unknown_field",
    "get_event_ruleset_200",
    "get_event_with_bot_info_200",
]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(FP)) for p in paths]


def test_v3_webhook_fixture() -> None:
    obs = decode_fingerprint((FP / "v3/webhook.json").read_bytes())
    assert obs.source == "fingerprint_v3"
    assert obs.request_id == "Px6VxbRC6WBkA39yeNH3"
    assert obs.visitor_id == "3HNey93AkBW6CRbxV6xP"
    assert obs.time == datetime(2019, 10, 12, 7, 20, 50, 520000, tzinfo=UTC)
    assert obs.ip == "216.3.128.12"
    assert obs.url == "https://banking.example.com/signup"
    assert obs.confidence == 0.97
    assert obs.visitor_found is True
    assert obs.incognito is False
    assert obs.first_seen_at == datetime(2022, 3, 16, 11, 31, 1, 101000, tzinfo=UTC)
    assert obs.linked_id == "any-string"
    assert obs.country == "CZ"  # ipInfo.v4 wins over the deprecated ipLocation
    assert obs.browser is not None and obs.browser.browser_name == "Chrome"
    assert obs.browser.user_agent == "(Macintosh; Intel Mac OS X 10_14_3) Chrome/73.0.3683.86"
    s = obs.signals
    assert (s.bot, s.proxy, s.vpn, s.tor, s.tampering) == (True, True, False, False, False)
    assert (s.datacenter, s.location_spoofing, s.suspect_score) == (True, True, 0)
    assert (s.vpn_public, s.relay, s.vpn_timezone_mismatch) == (False, False, False)
    assert obs.segment is None  # the fixture's tag has no integrations


def test_v4_webhook_fixture() -> None:
    obs = decode_fingerprint((FP / "v4/webhook/webhook_event.json").read_bytes())
    assert obs.source == "fingerprint_v4"
    assert obs.request_id == "1708102555327.NLOjmg"
    assert obs.visitor_id == "Ibk1527CUFmcnjLwIs4A9"
    assert obs.time == datetime.fromtimestamp(1708102555.327, tz=UTC)
    assert obs.first_seen_at == datetime.fromtimestamp(1708102555.327, tz=UTC)
    assert obs.ip == "61.127.217.15"
    assert obs.visitor_found is False
    assert obs.browser is not None and obs.browser.os == "Windows"
    assert obs.browser.user_agent == "Mozilla/5.0 (Windows NT 6.1; Win64; x64) ...."
    s = obs.signals
    assert (s.bot, s.proxy, s.vpn, s.tor, s.datacenter) == (False, True, False, False, True)
    assert obs.segment is None  # `tags` is empty


@pytest.mark.parametrize("name", V4_EVENTS)
def test_v4_server_api_events_decode_as_webhooks(name: str) -> None:
    # v4 webhooks are the same object as GET /v4/events/{event_id}; unknown fields are skipped.
    obs = decode_fingerprint((FP / f"v4/events/{name}.json").read_bytes())
    assert obs.request_id == "1708102555327.NLOjmg"
    assert obs.visitor_id == "Ibk1527CUFmcnjLwIs4A9"


V3_EVENTS = sorted((FP / "v3/events").glob("get_event_200*.json"))


@pytest.mark.parametrize("path", V3_EVENTS, ids=_ids(V3_EVENTS))
def test_v3_server_api_identification_data(path: Path) -> None:
    """The v3 Server API nests the webhook's identification fields under products."""
    products = json.loads(path.read_bytes())["products"]
    data = products["identification"].get("data")
    if data is None:  # identification failed: the product carries an error, not a visitor
        assert "error" in products["identification"]
        return
    if path.name == "get_event_200_with_broken_format.json":
        with pytest.raises(InvalidPayload) as err:
            decode_fingerprint(encode(data))
        assert err.value.field == "$.linkedId"
        return
    obs = decode_fingerprint(encode(data))
    assert obs.request_id == data["requestId"]
    assert obs.visitor_id == data["visitorId"]


NOT_WEBHOOKS = sorted(
    p
    for p in FP.rglob("*.json")
    if "errors" in p.parts
    or "visitors" in p.parts
    or (p.parent.name == "events" and p.parts[-3] == "v3")
    or "search" in p.name
    or "update_event" in p.name
)


@pytest.mark.parametrize("path", NOT_WEBHOOKS, ids=_ids(NOT_WEBHOOKS))
def test_non_webhook_fixtures_are_a_clear_422(path: Path) -> None:
    with pytest.raises(InvalidPayload) as err:
        decode_fingerprint(path.read_bytes())
    assert err.value.status == 422
    assert err.value.field == "$.requestId"
    assert "requestId" in err.value.message and "event_id" in err.value.message


def test_every_fixture_is_covered() -> None:
    covered = {FP / "v3/webhook.json", FP / "v4/webhook/webhook_event.json"}
    covered |= {FP / f"v4/events/{n}.json" for n in V4_EVENTS}
    covered |= {FP / "v4/events/get_event_with_edge_200.json"}
    covered |= set(V3_EVENTS) | set(NOT_WEBHOOKS)
    assert set(FP.rglob("*.json")) == covered


def test_v4_edge_event_without_identification() -> None:
    with pytest.raises(InvalidPayload) as err:
        decode_fingerprint((FP / "v4/events/get_event_with_edge_200.json").read_bytes())
    assert err.value.field == "$.identification"


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (b"", MalformedBody, None),
        (b"{not json", MalformedBody, None),
        (b"\xff\xfe", MalformedBody, None),
        (b"[]", InvalidPayload, "$"),
        (b'"text"', InvalidPayload, "$"),
        (encode(v3(visitorId=7)), InvalidPayload, "$.visitorId"),
        (
            encode({k: v for k, v in v3().items() if k != "visitorId"}),
            InvalidPayload,
            "$.visitorId",
        ),
        (encode(v3(requestId="")), InvalidPayload, "$.requestId"),
        (encode(v3(requestId="x" * 257)), InvalidPayload, "$.requestId"),
        (encode(v3(time="yesterday")), InvalidPayload, "$.time"),
        (encode(v3(confidence={"score": "high"})), InvalidPayload, "$.confidence.score"),
        (encode(v4(timestamp="now")), InvalidPayload, "$.timestamp"),
        (encode(v4(timestamp=10**15)), InvalidPayload, "$.timestamp"),  # past year 9999
        (encode(v3(timestamp=-1)), InvalidPayload, "$.timestamp"),
        (
            encode(v4(identification={"confidence": {}})),
            InvalidPayload,
            "$.identification.visitor_id",
        ),
        (
            encode(v3({**FULL_EXAMPLE, "track": {"event": 42}})),
            InvalidPayload,
            "$.tag.integrations.segment.track.event",
        ),
        (
            encode(v4({**FULL_EXAMPLE, "identify": {"userId": ["u"]}})),
            InvalidPayload,
            "$.tags.integrations.segment.identify.userId",
        ),
    ],
)
def test_bad_bodies_name_the_problem(
    body: bytes, error: type[RiskwireError], field: str | None
) -> None:
    with pytest.raises(error) as err:
        decode_fingerprint(body)
    assert err.value.field == field
    assert err.value.message


def test_unknown_fields_and_non_object_tags_are_tolerated() -> None:
    obs = decode_fingerprint(encode(v3(somethingNew={"a": 1}, tag="checkout")))
    assert obs.segment is None
    obs = decode_fingerprint(encode(v3({**FULL_EXAMPLE, "newSpec": {"x": 1}})))
    assert obs.segment is not None and obs.segment.track is not None


def test_v3_time_falls_back_to_timestamp() -> None:
    body = v3()
    del body["time"]
    obs = decode_fingerprint(encode(body))
    assert obs.time == datetime.fromtimestamp(1554910997.788, tz=UTC)
    del body["timestamp"]
    with pytest.raises(InvalidPayload) as err:
        decode_fingerprint(encode(body))
    assert err.value.field == "$.time"


def test_the_format_is_chosen_by_top_level_keys_not_by_text_in_the_body() -> None:
    # A v3 body is decoded as v3 at once when it names requestId; these bodies hold the
    # text without being v3, or are v3 without holding the text.
    nested = decode_fingerprint(encode(v4(tags={"requestId": "not-the-id"})))
    assert nested.source == "fingerprint_v4"
    assert nested.request_id == v4()["event_id"]
    escaped = encode(v3()).replace(b'"requestId"', b'"request\\u0049d"')
    assert b'"requestId"' not in escaped
    assert decode_fingerprint(escaped) == decode_fingerprint(encode(v3()))
    both = decode_fingerprint(encode(v3(event_id="also-v4-like")))
    assert both.source == "fingerprint_v3"
    with pytest.raises(InvalidPayload) as err:
        decode_fingerprint(encode(v3(requestId=7)))
    assert err.value.field == "$.requestId"
    with pytest.raises(MalformedBody):
        decode_fingerprint(b'{"requestId": "r", ')


def _outcome(decode: Callable[[bytes, datetime], object], body: bytes) -> object:
    """What ``decode`` gives ``body``: the observation, or the error's type, text and field."""
    try:
        return decode(body, EPOCH)
    except RiskwireError as exc:
        return (type(exc), exc.message, exc.field)


EPOCH = datetime.fromtimestamp(0, UTC)


def _unprobed_cases() -> list[bytes]:
    """Simulated events of each format, the fixtures, and bodies that could fool a guess:
    two formats' keys, keys spelled with escapes or far from the start, probe keys the
    probe cannot decode (bad UTF-8, a number out of range), invalid or wrong shapes."""
    from service.simulate import SimulationConfig, simulate

    config = SimulationConfig(seed=4, days=1, scale=0.1)
    bodies = [event.body for event, _ in zip(simulate(config), range(300), strict=False)]
    bodies += [path.read_bytes() for path in sorted(FIXTURES.rglob("*.json"))]
    v3_body, v4_body = encode(v3()), encode(v4())
    ipqs_body = b'{"request_id": "guess-ipqs", "success": true, "guid": "g", "time": 1790000000}'
    padding = b'{"pad": "' + b"x" * 400 + b'", '
    for body in (v3_body, v4_body, ipqs_body):
        inner = body[1:]
        bodies += [
            body,
            padding + inner,  # the format's key past the guessed span
            b'{"requestId": "both", ' + inner,
            b'{"event_id": "both", ' + inner,
            b'{"request_id": "both", ' + inner,
            b'{"request\\u0049d": "escaped", ' + inner,  # requestId, spelled otherwise
            b'{"event\\u005fid": "escaped", ' + inner,
            b'{"event_id": "\xff", ' + inner,  # a probe key the probe cannot decode
            b'{"request_id": 1e400, ' + inner,
            b'{"requestId": null, ' + inner,
            body[:-5],
        ]
    bodies += [b"", b"{broken", b"[]", b'{"not": "an event"}', b'"requestId"', b"{}"]
    return bodies


def test_decoding_without_the_probe_equals_decode_event() -> None:
    cases = _unprobed_cases()
    outcomes = [_outcome(decode_event, body) for body in cases]
    assert [_outcome(decode_event_unprobed, body) for body in cases] == outcomes
    # The cases reach every format and every kind of error.
    assert {o.source for o in outcomes if isinstance(o, Observation)} == {
        "fingerprint_v3",
        "fingerprint_v4",
        "ipqs",
    }
    assert {o[0] for o in outcomes if isinstance(o, tuple)} == {InvalidPayload, MalformedBody}
    # Webhooks take the same guess: every Fingerprint event decodes as decode_event has it.
    for body, outcome in zip(cases, outcomes, strict=True):
        if isinstance(outcome, Observation) and outcome.source != "ipqs":
            assert decode_fingerprint(body) == outcome


def _free_form(rng: random.Random, depth: int) -> Any:
    """A tag member of random shape: mostly shallow, some chains past the nesting limit,
    some integers at and past the 64-bit edges."""
    roll = rng.random()
    if depth < 36 and roll < 0.3:
        return {f"k{n}": _free_form(rng, depth + 1) for n in range(rng.randint(0, 3))}
    if depth < 36 and roll < 0.45:
        return [_free_form(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.55:
        return rng.choice([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, True, 0])
    return rng.choice(["a", 1.5, None, 7, False])


def test_the_free_form_fast_check_passes_exactly_what_the_naming_walk_passes() -> None:
    rng = random.Random(5)
    verdicts = {True: 0, False: 0}
    for n in range(3000):
        # Every tenth a chain of dicts through the limit, its leaf another random member.
        value: dict[str, Any] = {"a": _free_form(rng, 1)}
        if n % 10 == 0:
            for _ in range(rng.randint(29, 34)):
                value = {"n": value}
        try:
            _name_fault(value, "$")
            expected = True
        except InvalidPayload:
            expected = False
        assert well_formed(value) is expected, value
        verdicts[expected] += 1
    # Both answers come up often enough for the comparison to mean something.
    assert min(verdicts.values()) > 300, verdicts
