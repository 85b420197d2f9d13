"""Signed Fingerprint webhooks through the real app, outbox and forwarder to a Segment twin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.settings import Secret
from tests.payloads import FIXTURES, FULL_EXAMPLE, encode, signed, v3, v4
from tests.segment_receiver import SegmentReceiver

SECRET = "webhook-secret"
URL = "/webhooks/fingerprint"


async def test_full_example_end_to_end(
    app_with: Callable[..., Litestar], segment: SegmentReceiver
) -> None:
    body = encode(v3(FULL_EXAMPLE))
    async with AsyncTestClient(app_with(fingerprint_secret=Secret(SECRET))) as client:
        response = await client.post(URL, content=body, headers=signed(body, SECRET))
        assert response.status_code == 200
        answer = response.json()
        assert answer["requestId"] == "Px6VxbRC6WBkA39yeNH3"
        assert answer["emitted"] == ["identify", "page", "track", "group"]
        assert answer["skipped"] == []
        # The fixture is a selenium bot behind a residential proxy from a datacenter IP.
        risk = answer["risk"]
        assert (risk["level"], risk["action"]) == ("high", "block")
        messages = await asyncio.to_thread(segment.wait_for, 4)
    by_type = {m["type"]: m for m in messages}
    assert set(by_type) == {"identify", "page", "track", "group"}
    identify, page, track, group = (by_type[t] for t in ("identify", "page", "track", "group"))
    for m in messages:
        assert m["anonymousId"] == "3HNey93AkBW6CRbxV6xP"
        assert m["userId"] == "your_internal_ID_123456"
        assert m["timestamp"] == "2019-10-12T07:20:50.520Z"
        assert m["context"]["library"]["name"] == "riskwire"
        assert len(m["messageId"]) < 100
    # Identify table (plus riskwire's fraud traits)
    traits = identify["traits"]
    assert {k: v for k, v in traits.items() if not k.startswith("fraud_")} == {
        "name": "Jon Doe",
        "visitorId": "3HNey93AkBW6CRbxV6xP",
        "createdAt": "2022-03-16T11:31:01.101Z",
    }
    assert traits["fraud_score"] == risk["score"] and traits["fraud_action"] == "block"
    for m in (page, track, group):
        fraud = {k: v for k, v in m["context"].items() if k.startswith("fraud_")}
        assert fraud == {k: v for k, v in traits.items() if k.startswith("fraud_")}
    # Page table
    assert page["context"]["ip"] == "216.3.128.12"
    assert page["context"]["browserDetails"]["browserFullVersion"] == "73.0.3683.86"
    assert page["context"]["incognito"] is False
    assert page["context"]["confidenceScore"] == 0.97
    assert page["context"]["requestId"] == "Px6VxbRC6WBkA39yeNH3"
    assert page["context"]["trial"] is True
    assert page["properties"] == {
        "url": "https://banking.example.com/signup",
        "path": "/account/password",
        "referrer": "/account/home",
    }
    assert (page["category"], page["name"]) == ("Account", "Update Password")
    # Track table
    assert track["event"] == "Plan Updated"
    assert track["properties"] == {"currency": "USD", "value": "19.99"}
    # Group table
    assert group["groupId"] == "0e8c78ea9d97a7b8185e8632"
    assert group["traits"] == {"name": "Fingerprint", "industry": "Tech", "employees": 110}


async def test_duplicate_delivery_answers_the_same_and_emits_nothing_again(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    body = encode(v4(FULL_EXAMPLE))
    first = await client.post(URL, content=body)
    assert first.status_code == 200
    assert "riskwire-replayed" not in first.headers
    await asyncio.to_thread(segment.wait_for, 4)
    # Fingerprint retries with the same event id (5 minutes later, possibly another body).
    again = await client.post(URL, content=encode(v4({}, url="https://changed")))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["riskwire-replayed"] == "true"
    await asyncio.sleep(0.3)
    assert len(segment.messages) == 4


async def test_concurrent_duplicates_emit_once(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    body = encode(v3({"track": {"event": "Signed Up"}}))
    responses = await asyncio.gather(*(client.post(URL, content=body) for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert sum("riskwire-replayed" not in r.headers for r in responses) == 1
    await asyncio.to_thread(segment.wait_for, 2)
    await asyncio.sleep(0.3)
    assert sorted(m["type"] for m in segment.messages) == ["identify", "track"]


async def test_v4_with_segment_tags_is_delivered(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    response = await client.post(URL, content=encode(v4({"identify": {"userId": "u-9"}})))
    answer = response.json()
    assert (answer["requestId"], answer["emitted"], answer["skipped"]) == (
        "1708102555327.NLOjmg",
        ["identify"],
        [],
    )
    (identify,) = await asyncio.to_thread(segment.wait_for, 1)
    assert identify["userId"] == "u-9"
    assert identify["anonymousId"] == "Ibk1527CUFmcnjLwIs4A9"


async def test_skipped_specs_are_reported(client: AsyncTestClient[Litestar]) -> None:
    tag = {"track": {"properties": {}}, "group": {"traits": {"a": 1}}}
    response = await client.post(URL, content=encode(v3(tag)))
    assert response.status_code == 200
    assert response.json()["emitted"] == ["identify"]
    assert [s["type"] for s in response.json()["skipped"]] == ["track", "group"]
    assert all("required" in s["reason"] for s in response.json()["skipped"])


async def test_no_integration_is_acknowledged_and_sends_nothing(
    client: AsyncTestClient[Litestar], segment: SegmentReceiver
) -> None:
    for body in (v3(), v3({**FULL_EXAMPLE, "skipIntegration": True})):
        body["requestId"] = f"r-{len(segment.messages)}-{body['tag'].get('integrations')!r:.5}"
        response = await client.post(URL, content=encode(body))
        assert response.status_code == 200
        assert response.json()["emitted"] == []
    await asyncio.sleep(0.3)
    assert segment.messages == []


async def test_signature_is_required_when_a_secret_is_set(
    app_with: Callable[..., Litestar],
) -> None:
    body = encode(v3(FULL_EXAMPLE))
    async with AsyncTestClient(app_with(fingerprint_secret=Secret(SECRET))) as client:
        for headers in ({}, {"fpjs-event-signature": "invalid"}, signed(body, "other")):
            response = await client.post(URL, content=body, headers=headers)
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["field"] == "fpjs-event-signature"
            assert SECRET not in response.text
        v2 = {
            "fpjs-event-signature": signed(body, SECRET)["fpjs-event-signature"].replace(
                "v1=", "v2="
            )
        }
        assert (await client.post(URL, content=body, headers=v2)).status_code == 401
        assert (
            await client.post(URL, content=b"", headers=signed(body, SECRET))
        ).status_code == 401
        assert (
            await client.post(URL, content=body, headers=signed(body, SECRET))
        ).status_code == 200


async def test_oversized_body_is_413(app_with: Callable[..., Litestar]) -> None:
    body = encode(v3({"page": {"properties": {"pad": "x" * 2000}}}))
    async with AsyncTestClient(app_with(max_body_bytes=1024)) as client:
        response = await client.post(URL, content=body)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"


async def test_bad_bodies_are_4xx_json_naming_the_field(client: AsyncTestClient[Litestar]) -> None:
    cases: list[tuple[bytes, int, Any]] = [
        (b"{oops", 400, None),
        (b"", 400, None),
        (encode(v3(visitorId=None)), 422, "$.visitorId"),
        (encode(v3({"group": {"groupId": 5}})), 422, "$.tag.integrations.segment.group.groupId"),
        (
            (FIXTURES / "fingerprint/v4/errors/400_request_body_invalid.json").read_bytes(),
            422,
            "$.requestId",
        ),
        (
            (FIXTURES / "fingerprint/v4/events/get_event_with_edge_200.json").read_bytes(),
            422,
            "$.identification",
        ),
    ]
    for body, status, field in cases:
        response = await client.post(URL, content=body)
        assert response.status_code == status, body[:80]
        error = response.json()["error"]
        assert error["status"] == status
        assert error["message"]
        assert error.get("field") == field


async def test_redis_down_is_a_503_within_the_deadline(app_with: Callable[..., Litestar]) -> None:
    from service.redis_server import free_port

    app = app_with(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.2)
    async with AsyncTestClient(app) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.post(URL, content=encode(v3(FULL_EXAMPLE)))
        assert loop.time() - started < 3.0
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        ready = await client.get("/ready")
        assert ready.status_code == 503


async def test_health_ready_and_openapi(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = (await client.get("/ready")).json()
    assert ready["status"] == "ok" and ready["redis"] is True
    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"][URL]["post"]
    assert operation["operationId"] == "ingestFingerprintWebhook"
    assert {"200", "401", "413", "422"} <= set(operation["responses"])
    assert json.dumps(schema).count("WebhookAnswer") >= 1


async def test_without_write_key_specs_land_in_the_sink(
    app_with: Callable[..., Litestar], settings: Any
) -> None:
    async with AsyncTestClient(app_with(segment_write_key=None)) as client:
        response = await client.post(URL, content=encode(v3(FULL_EXAMPLE)))
        assert response.status_code == 200
        forwarder = client.app.state.forwarder
        for _ in range(200):
            if forwarder.stats.delivered == 4:
                break
            await asyncio.sleep(0.02)
    lines = Path(settings.sink_path).read_bytes().splitlines()
    messages = [m for line in lines for m in json.loads(line)["batch"]]
    assert sorted(m["type"] for m in messages) == ["group", "identify", "page", "track"]
