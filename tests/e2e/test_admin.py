"""The outbox admin API through the whole app: a message Segment refuses is parked, listed,
replayed and delivered, or purged; only admin keys open it, and it is off without them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.settings import Secret
from tests.payloads import encode, v3
from tests.segment_receiver import SegmentReceiver

ADMIN_KEY = "admin-key-for-tests"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
CHECKOUT = {"authorization": "Bearer checkout-key"}  # a valid key of the score API
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/admin/outbox", None),
    ("GET", "/admin/outbox/parked", None),
    ("POST", "/admin/outbox/parked/replay", {"all": True}),
    ("POST", "/admin/outbox/parked/purge", {"all": True}),
]


async def call(
    client: AsyncTestClient[Litestar],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


async def park(client: AsyncTestClient[Litestar], segment: SegmentReceiver, request_id: str) -> str:
    """Send a webhook whose identify Segment refuses (400); return its messageId once parked."""
    message_id = f"rw-fp-{request_id}-identify"
    segment.reject_message_ids.add(message_id)
    body = encode(v3({"identify": {"userId": f"user-{request_id}"}}, requestId=request_id))
    assert (await client.post("/webhooks/fingerprint", content=body)).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = (await client.get("/admin/outbox/parked", headers=ADMIN)).json()
        if any(p["messageId"] == message_id for p in listed):
            return message_id
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} was never parked")


async def test_a_parked_message_is_listed_replayed_and_delivered_then_another_purged(
    app_with: Callable[..., Litestar], segment: SegmentReceiver
) -> None:
    async with AsyncTestClient(app_with(admin_api_keys=(Secret(ADMIN_KEY),))) as client:
        refused = await park(client, segment, "admin-replay")
        stats = (await client.get("/admin/outbox", headers=ADMIN)).json()
        assert stats["parked"] == 1 and stats["pending"] == 0

        (parked,) = (await client.get("/admin/outbox/parked", headers=ADMIN)).json()
        assert parked["messageId"] == refused and parked["type"] == "identify"
        assert parked["error"].startswith("HTTP 400")
        assert refused not in {m["messageId"] for m in segment.messages}

        segment.reject_message_ids.clear()  # Segment's complaint was fixed
        replay = {"ids": [parked["id"]]}
        replayed = await client.post("/admin/outbox/parked/replay", json=replay, headers=ADMIN)
        assert (replayed.status_code, replayed.json()) == (200, {"replayed": 1})
        await asyncio.to_thread(segment.wait_for, 1)
        assert [m["messageId"] for m in segment.messages] == [refused]
        # Replaying the same id again finds nothing left to replay.
        again = await client.post("/admin/outbox/parked/replay", json=replay, headers=ADMIN)
        assert again.json() == {"replayed": 0}

        dropped = await park(client, segment, "admin-purge")
        unknown = await client.post(
            "/admin/outbox/parked/purge", json={"ids": ["1-0"]}, headers=ADMIN
        )
        assert unknown.json() == {"purged": 0}
        purged = await client.post("/admin/outbox/parked/purge", json={"all": True}, headers=ADMIN)
        assert (purged.status_code, purged.json()) == (200, {"purged": 1})
        assert (await client.get("/admin/outbox/parked", headers=ADMIN)).json() == []
        stats = (await client.get("/admin/outbox", headers=ADMIN)).json()
        assert (stats["length"], stats["pending"], stats["parked"]) == (0, 0, 0)
    assert dropped not in {m["messageId"] for m in segment.messages}


async def test_only_admin_keys_open_the_admin_routes(app_with: Callable[..., Litestar]) -> None:
    async with AsyncTestClient(app_with(admin_api_keys=(Secret(ADMIN_KEY),))) as client:
        for method, path, body in ROUTES:
            for headers in (
                {},
                {"authorization": "Bearer wrong"},
                {"authorization": ADMIN_KEY},  # no scheme
                {"authorization": f"Basic {ADMIN_KEY}"},
                CHECKOUT,
            ):
                response = await call(client, method, path, body, headers)
                assert response.status_code == 401, (path, headers, response.text)
                error = response.json()["error"]
                assert (error["code"], error["field"]) == ("unauthorized", "Authorization")
                assert ADMIN_KEY not in response.text
            assert (await call(client, method, path, body, ADMIN)).status_code == 200, path
        # Nor does an admin key open the checkout API.
        score = await client.post("/v1/score", json={"visitorId": "v"}, headers=ADMIN)
        assert score.status_code == 401


async def test_without_admin_keys_the_admin_api_is_disabled(
    client: AsyncTestClient[Litestar],
) -> None:
    for method, path, body in ROUTES:
        for headers in ({}, CHECKOUT, ADMIN):
            response = await call(client, method, path, body, headers)
            assert response.status_code == 403, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "forbidden"
            assert "disabled" in error["message"] and "RISKWIRE_ADMIN_API_KEYS" in error["message"]


async def test_bad_requests_are_4xx_naming_the_field(app_with: Callable[..., Litestar]) -> None:
    too_many = {"ids": [f"{n}-0" for n in range(1001)]}
    cases: list[tuple[bytes | dict[str, Any], int, str | None]] = [
        ({}, 422, "$.ids"),
        ({"all": False}, 422, "$.all"),
        ({"all": True, "ids": ["1-0"]}, 422, "$.all"),
        ({"ids": []}, 422, "$.ids"),
        ({"ids": "1-0"}, 422, "$.ids"),
        ({"ids": ["1-0", "parked-7"]}, 422, "$.ids[1]"),
        ({"ids": ["1-0\n"]}, 422, "$.ids[0]"),
        # Well formed but beyond what Redis accepts: refused here, not by Redis as a 503.
        ({"ids": ["18446744073709551616-0"]}, 422, "$.ids[0]"),
        (too_many, 422, "$.ids"),
        ({"id": ["1-0"]}, 422, "$"),
        (b"", 400, None),
        (b"{oops", 400, None),
        (b'{"ids": ["1-0"], "all": tru', 400, None),
    ]
    async with AsyncTestClient(app_with(admin_api_keys=(Secret(ADMIN_KEY),))) as client:
        for path in ("/admin/outbox/parked/replay", "/admin/outbox/parked/purge"):
            for body, status, field in cases:
                if isinstance(body, bytes):
                    response = await client.post(path, content=body, headers=ADMIN)
                else:
                    response = await client.post(path, json=body, headers=ADMIN)
                assert response.status_code == status, (path, body, response.text)
                error = response.json()["error"]
                assert error["status"] == status and error["message"]
                assert error.get("field") == field, (body, error)
        for count in ("0", "1001", "-1", "ten"):
            response = await client.get(f"/admin/outbox/parked?count={count}", headers=ADMIN)
            assert response.status_code == 400, (count, response.text)
            assert response.json()["error"]["field"] == "count"
        listed = await client.get("/admin/outbox/parked?count=1000", headers=ADMIN)
        assert (listed.status_code, listed.json()) == (200, [])
