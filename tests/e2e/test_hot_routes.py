"""The hot routes' lanes (service.routes.hot_path) answer exactly as their Litestar handlers.

The app answers the score API and both webhooks before routing (``LaneApp``); the same routes
in an app built without it run through Litestar's handlers (``through``). Both apps here
share one set of resources (Redis, outbox, scorer), so one request can be sent both ways.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.errors import EXCEPTION_HANDLERS
from service.routes import ScoreController, WebhookController
from service.settings import Secret, Settings
from tests.payloads import clean_v3, encode, signed

SECRET = "lane-secret"
AUTH = {"authorization": "Bearer checkout-key"}

Pair = tuple[AsyncTestClient[Litestar], AsyncTestClient[Litestar]]


@pytest.fixture
async def pair(settings: Settings) -> AsyncIterator[Pair]:
    """(the app, the same routes through Litestar's handlers on the app's resources)."""
    app = create_app(msgspec.structs.replace(settings, fingerprint_secret=Secret(SECRET)))
    async with AsyncTestClient(app) as served:
        plain = Litestar(
            route_handlers=[ScoreController, WebhookController],
            exception_handlers=EXCEPTION_HANDLERS,
            state=app.state,
        )
        handled = AsyncTestClient(plain)
        # Each test client runs its app on a loop of its own; the shared resources (the
        # pipelined Redis link above all) belong to the served app's loop.
        handled.blocking_portal = served.blocking_portal
        async with handled:
            yield served, handled


def same(one: httpx.Response, other: httpx.Response) -> None:
    assert one.status_code == other.status_code
    assert one.content == other.content
    assert one.headers["content-type"] == other.headers["content-type"]
    assert one.headers["content-length"] == other.headers["content-length"]


async def test_a_score_answers_the_same_both_ways(pair: Pair) -> None:
    served, handled = pair
    # No request id: nothing is counted twice, so the second answer equals the first.
    body = encode({"visitorId": "LaneVisitor000000001", "userId": "lane-user", "ip": "192.0.2.4"})
    first = await served.post("/v1/score", content=body, headers=AUTH)
    assert first.status_code == 200, first.text
    assert first.json()["visitorId"] == "LaneVisitor000000001"
    same(first, await handled.post("/v1/score", content=body, headers=AUTH))


async def test_errors_answer_the_same_both_ways(pair: Pair) -> None:
    served, handled = pair
    cases = [
        ("/v1/score", b'{"visitorId": "V"}', {"authorization": "Bearer wrong"}, 401),
        ("/v1/score", b'{"visitorId": 7}', AUTH, 422),
        ("/v1/score", b"{", AUTH, 400),
        ("/webhooks/fingerprint", b"{}", {"fpjs-event-signature": "v1=00"}, 401),
        ("/webhooks/ipqs", b"{}", {}, 401),
    ]
    for path, body, headers, status in cases:
        answer = await served.post(path, content=body, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["error"]["status"] == status
        same(answer, await handled.post(path, content=body, headers=headers))


async def test_a_webhook_then_its_redelivery_the_other_way(pair: Pair) -> None:
    served, handled = pair
    body = encode(clean_v3("lane-request-1", user="lane-user"))
    first = await served.post("/webhooks/fingerprint", content=body, headers=signed(body, SECRET))
    assert first.status_code == 200, first.text
    assert "riskwire-replayed" not in first.headers
    again = await handled.post("/webhooks/fingerprint", content=body, headers=signed(body, SECRET))
    assert again.status_code == 200
    assert again.headers["riskwire-replayed"] == "true"
    assert again.json() == first.json()
    third = await served.post("/webhooks/fingerprint", content=body, headers=signed(body, SECRET))
    assert third.headers["riskwire-replayed"] == "true"
    same(third, again)


async def test_lane_errors_keep_the_request_id_and_their_status_in_metrics(pair: Pair) -> None:
    served, _ = pair
    answer = await served.post("/v1/score", content=b"{}", headers={"x-request-id": "lane-1"})
    assert answer.status_code == 401
    assert answer.headers["x-request-id"] == "lane-1"
    metrics = (await served.get("/metrics")).text
    assert 'riskwire_requests_total{method="POST",route="/v1/score",status="401"} 1.0' in metrics


async def test_other_spellings_of_a_lane_route_go_through_litestar(pair: Pair) -> None:
    served, _ = pair
    body = encode({"visitorId": "LaneVisitor000000002", "userId": "lane-user"})
    laned = await served.post("/v1/score", content=body, headers=AUTH)
    routed = await served.post("/v1/score/", content=body, headers=AUTH)
    same(laned, routed)
    assert (await served.get("/v1/score", headers=AUTH)).status_code == 405
    metrics = (await served.get("/metrics")).text
    assert 'riskwire_requests_total{method="POST",route="/v1/score",status="200"} 2.0' in metrics
