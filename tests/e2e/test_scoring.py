"""Scoring through the whole app, told as a fraud analyst would tell it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import DEFAULT_MODEL, create_app
from service.settings import Secret, Settings
from tests.payloads import clean_v3, encode, v4
from tests.segment_receiver import SegmentReceiver

URL = "/webhooks/fingerprint"
KEY = "checkout-key"
AUTH = {"authorization": f"Bearer {KEY}"}


def minute(n: int) -> str:
    return (datetime(2026, 11, 1, 12, tzinfo=UTC) + timedelta(minutes=n)).isoformat()


async def post(client: AsyncTestClient[Litestar], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(URL, content=encode(body))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_six_user_ids_on_one_device_in_an_hour_score_higher_than_one(
    client: AsyncTestClient[Litestar],
) -> None:
    ring, family = "RingDevice0000000001", "FamilyDevice00000001"
    # Each device on its own line, as in the promotion gate's replay: the story is about the
    # device, not about an IP the two happen to share.
    for n in range(6):
        ring_body = clean_v3(f"ring-{n}", ring, f"mule-{n}", minute(n * 9), ip="203.0.113.10")
        ring_answer = await post(client, ring_body)
        family_body = clean_v3(f"fam-{n}", family, "parent-1", minute(n * 9), ip="203.0.113.9")
        family_answer = await post(client, family_body)
    assert ring_answer["risk"]["score"] > family_answer["risk"]["score"] + 20
    assert ring_answer["risk"]["action"] in ("review", "block")
    assert family_answer["risk"]["action"] == "allow"


async def test_a_clean_confident_returning_visitor_scores_low(
    client: AsyncTestClient[Litestar],
) -> None:
    answer = await post(client, clean_v3("clean-1", user="loyal-customer"))
    assert answer["risk"]["score"] <= 10
    assert answer["risk"]["level"] == "low"


async def test_tor_bot_and_tampering_score_high_with_those_reasons_first(
    client: AsyncTestClient[Litestar],
) -> None:
    body = clean_v3("attack-1", "AttackerDevice000001", "victim-7")
    body |= {
        "tor": {"result": True},
        "bot": {"result": "bad", "type": "selenium"},
        "tampering": {"result": True, "anomalyScore": 0.9, "antiDetectBrowser": False},
    }
    assert (await post(client, body))["risk"]["level"] == "high"
    response = await client.post("/v1/score", json={"requestId": "attack-1"}, headers=AUTH)
    assert response.status_code == 200, response.text
    scored = response.json()
    assert scored["action"] == "block" and scored["score"] >= 95
    # Which of the three leads is the model's weighting (the hand-set baseline: Tor first).
    assert {r["code"] for r in scored["reasons"][:3]} == {"TOR", "TAMPERING", "BOT"}
    assert scored["signals"]["tor"] is True


async def test_blocked_placeholder_user_ids_never_link_devices(
    client: AsyncTestClient[Litestar],
) -> None:
    for n, placeholder in enumerate(["anonymous", "null", "0", "-1", "undefined", "void"]):
        answer = await post(
            client, clean_v3(f"qa-{n}", f"QaDevice{n:012d}", placeholder, minute(n))
        )
    response = await client.post(
        "/v1/score", json={"visitorId": "QaDevice000000000005", "userId": "abc123"}, headers=AUTH
    )
    assert response.json()["signals"]["users_per_device_1h"] == 0
    assert answer["risk"]["action"] == "allow"


async def test_score_api_requires_a_valid_api_key(app_with: Callable[..., Litestar]) -> None:
    async with AsyncTestClient(app_with(api_keys=(Secret(KEY),))) as client:
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": KEY},
            {"authorization": f"Basic {KEY}"},
        ):
            response = await client.post("/v1/score", json={"visitorId": "x"}, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["field"] == "Authorization"
            assert KEY not in response.text
        ok = await client.post("/v1/score", json={"visitorId": "x"}, headers=AUTH)
        assert ok.status_code == 200
        visitor = await client.get("/v1/visitors/x")
        assert visitor.status_code == 401
        # Every checkout route, the cold ones included (each carries its own key check).
        for path, body in (("/v1/rescore", {"visitorId": "x"}), ("/v1/labels", {"labels": []})):
            refused = await client.post(path, json=body, headers={"authorization": "Bearer no"})
            assert refused.status_code == 401, path


async def test_score_api_errors_are_clear(client: AsyncTestClient[Litestar]) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"requestId": "never-seen"}, 404, "$.requestId"),
        ({}, 422, "$"),
        ({"visitorId": "v", "ip": "not-an-ip"}, 422, "$.ip"),
        ({"event": {"requestId": "r", "visitorId": 5}}, 422, "$.event.visitorId"),
        ({"requestId": "a", "event": clean_v3("b")}, 422, "$.requestId"),
    ]
    for body, status, field in cases:
        response = await client.post("/v1/score", json=body, headers=AUTH)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["field"] == field
    bad = await client.post("/v1/score", json={"visitorId": "v", "typo": 1}, headers=AUTH)
    assert bad.status_code == 422
    assert "typo" in bad.json()["error"]["message"]
    deep = await client.post(
        "/v1/score", json={"ipqs": {"request_id": "x", "fraud_chance": 101}}, headers=AUTH
    )
    assert deep.status_code == 422
    assert deep.json()["error"]["field"] == "$.ipqs.fraud_chance"
    for raw in (b"", b"{oops"):
        response = await client.post("/v1/score", content=raw, headers=AUTH)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_json"


async def test_score_with_an_inline_event_then_by_request_id(
    client: AsyncTestClient[Litestar],
) -> None:
    inline = await client.post(
        "/v1/score",
        json={"event": clean_v3("inline-1", user="u-1"), "userId": "u-1", "email": "u1@x.io"},
        headers=AUTH,
    )
    assert inline.status_code == 200
    body = inline.json()
    assert body["requestId"] == "inline-1"
    assert body["visitorId"] == "VisitorClean000000001"
    assert body["modelVersion"] == json.loads(DEFAULT_MODEL.read_bytes())["model_version"]
    assert {"score", "level", "action", "reasons", "signals"} <= set(body)
    # The observation was stored after the answer: scoring by requestId now works.
    for _ in range(50):
        again = await client.post("/v1/score", json={"requestId": "inline-1"}, headers=AUTH)
        if again.status_code == 200:
            break
        await asyncio.sleep(0.02)
    assert again.status_code == 200
    assert again.json()["score"] == body["score"]


async def test_visitor_lookup_shows_counts_and_recent_scores(
    client: AsyncTestClient[Litestar],
) -> None:
    visitor = "LookupDevice00000001"
    for n in range(3):
        await post(client, clean_v3(f"look-{n}", visitor, f"user-{n}", minute(n)))
    response = await client.get(f"/v1/visitors/{visitor}", headers=AUTH)
    assert response.status_code == 200
    view = response.json()
    assert view["visitorId"] == visitor
    # Counted at the API clock (now): the events of 2026-11-01 are within 30 days only if
    # now is close enough, so check the recent scores, which do not depend on the clock.
    assert [s["requestId"] for s in view["recentScores"]] == ["look-2", "look-1", "look-0"]
    assert set(view["counts"]) >= {"users_per_device", "ips_per_device", "events_per_device"}


async def test_visitor_counts_follow_the_api_clock(settings: Settings) -> None:
    now = [datetime(2026, 11, 1, 12, 30, tzinfo=UTC)]
    app = create_app(settings, clock=lambda: now[0])
    async with AsyncTestClient(app) as client:
        for n in range(2):
            await post(client, clean_v3(f"clock-{n}", "ClockDevice000000001", f"u{n}", minute(n)))
        view = (await client.get("/v1/visitors/ClockDevice000000001", headers=AUTH)).json()
        assert view["counts"]["users_per_device"] == {"1h": 2, "24h": 2, "30d": 2}
        now[0] += timedelta(hours=2)
        view = (await client.get("/v1/visitors/ClockDevice000000001", headers=AUTH)).json()
        assert view["counts"]["users_per_device"] == {"1h": 0, "24h": 2, "30d": 2}


async def test_ipqs_result_identifies_its_user_and_joins_later_fingerprint_events(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    ipqs = {
        "request_id": "IPQS-1",
        "success": True,
        "device_id": "d1",
        "guid": "G-1",
        "guid_confidence": 90,
        "fraud_chance": 92,
        "recent_abuse": True,
        "bot_status": False,
        "proxy": True,
        "vpn": True,
        "tor": False,
        "userID": "shopper-5",
        "time": int(datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp()),
        "new_field": 1,
    }
    response = await client.post("/webhooks/ipqs", json=ipqs, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["emitted"] == ["identify"]
    assert answer["risk"]["action"] == "block"
    (identify,) = await asyncio.to_thread(segment.wait_for, 1)
    assert identify["userId"] == "shopper-5"
    assert identify["traits"]["fraud_ipqs_fraud_chance"] == 92
    assert identify["traits"]["fraud_score"] == answer["risk"]["score"]
    # Ten minutes later the same user shows up on Fingerprint: the IPQS verdict joins in and
    # turns a visit that would be allowed into one that is not.
    joined = await post(client, clean_v3("fp-after-ipqs", user="shopper-5", at=minute(10)))
    alone = await post(
        client,
        clean_v3("fp-no-ipqs", "OtherDevice000000001", "shopper-6", minute(10), ip="192.0.2.60"),
    )
    assert alone["risk"]["action"] == "allow"
    assert joined["risk"]["action"] != "allow"
    assert joined["risk"]["score"] > alone["risk"]["score"]


async def test_failed_ipqs_lookup_is_not_scored_clean(client: AsyncTestClient[Litestar]) -> None:
    failed = {
        "request_id": "IPQS-F",
        "success": False,
        "message": "blocked",
        "guid": "G-2",
        "userID": "shopper-9",
        "fraud_chance": 0,
    }
    answer = (await client.post("/webhooks/ipqs", json=failed, headers=AUTH)).json()
    assert "IPQS_LOOKUP_FAILED" in [
        r["code"]
        for r in (await client.post("/v1/score", json={"ipqs": failed}, headers=AUTH)).json()[
            "reasons"
        ]
    ]
    assert answer["risk"]["score"] > 3


async def test_ipqs_without_a_usable_user_emits_nothing_but_is_scored(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    from tests.payloads import FIXTURES

    body = (FIXTURES / "ipqs/proxy-detection-1.1.1.1-rapid7-help-example.json").read_bytes()
    response = await client.post("/webhooks/ipqs", content=body, headers=AUTH)
    assert response.status_code == 200
    answer = response.json()
    assert answer["emitted"] == []
    assert answer["skipped"][0]["type"] == "identify"
    assert "user id" in answer["skipped"][0]["reason"]
    # Scored all the same: a verdict of the model's, whatever its weights make of a bot
    # flag on an IP that IPQS itself gives a fraud score of 0.
    risk = answer["risk"]
    assert 0 <= risk["score"] <= 100
    assert (risk["level"], risk["action"]) in {
        ("low", "allow"),
        ("medium", "review"),
        ("high", "block"),
    }
    bad = await client.post(
        "/webhooks/ipqs", json={"request_id": "x", "fraud_chance": 150}, headers=AUTH
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "$.fraud_chance"


async def test_allow_and_deny_lists_short_circuit(app_with: Callable[..., Litestar]) -> None:
    app = app_with(
        api_keys=(Secret(KEY),),
        allow_users=("vip-1",),
        deny_ips=("203.0.113.0/24",),
        deny_visitors=("BannedDevice00000001",),
    )
    async with AsyncTestClient(app) as client:

        async def score(**body: Any) -> dict[str, Any]:
            response = await client.post("/v1/score", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

        vip = await score(event=clean_v3("vip") | {"tor": {"result": True}}, userId="vip-1")
        assert (vip["score"], vip["action"], vip["reasons"][0]["code"]) == (
            0,
            "allow",
            "ALLOWLIST_USER",
        )
        denied = await score(visitorId="v", userId="vip-1", ip="203.0.113.9")
        assert (denied["score"], denied["action"]) == (100, "block")
        assert denied["reasons"][0]["code"] == "DENYLIST_IP"  # deny beats allow
        banned = await score(visitorId="BannedDevice00000001")
        assert banned["reasons"][0]["code"] == "DENYLIST_VISITOR"


async def test_v4_webhook_scores_and_the_prefix_is_configurable(
    app_with: Callable[..., Litestar], segment: SegmentReceiver
) -> None:
    async with AsyncTestClient(app_with(trait_prefix="rw_")) as client:
        answer = await post(client, v4({"identify": {"userId": "u"}, "page": {}}))
        assert answer["risk"]["score"] >= 0
        messages = await asyncio.to_thread(segment.wait_for, 2)
    identify = next(m for m in messages if m["type"] == "identify")
    page = next(m for m in messages if m["type"] == "page")
    assert identify["traits"]["rw_score"] == answer["risk"]["score"]
    assert page["context"]["rw_level"] == answer["risk"]["level"]
    assert {
        "rw_users_per_device_1h",
        "rw_devices_per_ip_24h",
        "rw_model_version",
        "rw_scored_at",
        "rw_reasons",
    } <= set(identify["traits"])
    assert not any(k.startswith("fraud_") for k in identify["traits"])


async def test_a_website_cannot_forge_its_fraud_score(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    body = clean_v3("forge-1", user="u")
    body["tag"]["integrations"]["segment"]["identify"]["traits"] = {"fraud_score": 0}
    body["tag"]["integrations"]["segment"]["page"] = {"context": {"fraud_action": "allow"}}
    # Hostile enough that any model past the promotion gate scores it above the forged 0.
    body["tor"] = {"result": True}
    body["bot"] = {"result": "bad", "type": "selenium"}
    answer = await post(client, body)
    messages = await asyncio.to_thread(segment.wait_for, 2)
    identify = next(m for m in messages if m["type"] == "identify")
    page = next(m for m in messages if m["type"] == "page")
    assert identify["traits"]["fraud_score"] == answer["risk"]["score"] > 0
    assert page["context"]["fraud_action"] == answer["risk"]["action"]


async def test_score_api_is_rate_limited_per_api_key(
    app_with: Callable[..., Litestar], redis_client: Any, settings: Settings
) -> None:
    other = "second-key"
    app = app_with(rate_limit_per_minute=3, api_keys=(Secret(KEY), Secret(other)))
    async with AsyncTestClient(app) as client:
        statuses = []
        for n in range(5):
            response = await client.post("/v1/score", json={"visitorId": f"v{n}"}, headers=AUTH)
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("rate_limited", "Authorization")
        # Another key has its own budget.
        second = await client.post(
            "/v1/score", json={"visitorId": "v"}, headers={"authorization": f"Bearer {other}"}
        )
        assert second.status_code == 200
    keys = [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:{{rl:*")]
    assert len(keys) == 2 and all(KEY.encode() not in k and other.encode() not in k for k in keys)
    async with AsyncTestClient(app_with(rate_limit_per_minute=0)) as client:
        for _ in range(5):
            ok = await client.post("/v1/score", json={"visitorId": "v"}, headers=AUTH)
            assert ok.status_code == 200
