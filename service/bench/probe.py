"""Plain sequential requests: proving each route answers as expected before loading it.

A load run only counts statuses; a service that answered every request with a fast 401 or
422 would look splendid. These checks make sure the measured path is the real one.
"""

from __future__ import annotations

import http.client
from typing import Any

import msgspec

from service.bench.payloads import API_KEY, SIGNATURE_HEADER, BodyFactory, sign


class ProbeError(RuntimeError):
    pass


class Client:
    """One keep-alive connection, as wrk holds them."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        sent = {
            "content-type": "application/json",
            "authorization": f"Bearer {API_KEY}",
            **(headers or {}),
        }
        self._connection.request("POST", path, body=body, headers=sent)
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


def _expect(what: str, status: int, body: bytes, wanted: int) -> dict[str, Any]:
    if status != wanted:
        raise ProbeError(f"{what}: expected {wanted}, got {status}: {body[:500]!r}")
    answer: dict[str, Any] = msgspec.json.decode(body)
    return answer


def check_service(client: Client, bodies: BodyFactory) -> None:
    scored = _expect("POST /v1/score", *client.post("/v1/score", bodies.score_body()), 200)
    if not isinstance(scored.get("score"), int):
        raise ProbeError(f"POST /v1/score answered without a score: {scored}")
    webhook = bodies.webhook_body()
    answer = _expect(
        "POST /webhooks/fingerprint",
        *client.post("/webhooks/fingerprint", webhook, {SIGNATURE_HEADER: sign(webhook)}),
        200,
    )
    if sorted(answer.get("emitted", [])) != ["identify", "track"]:
        raise ProbeError(f"the webhook should emit identify and track: {answer}")
    # Proves the secret is configured, so every measured webhook pays for its HMAC check.
    forged = bodies.webhook_body()
    _expect(
        "POST /webhooks/fingerprint with a wrong signature",
        *client.post("/webhooks/fingerprint", forged, {SIGNATURE_HEADER: sign(forged, "wrong")}),
        401,
    )


def send_scores(client: Client, bodies: BodyFactory, count: int) -> None:
    for _ in range(count):
        _expect("POST /v1/score", *client.post("/v1/score", bodies.score_body()), 200)


def send_webhooks(client: Client, bodies: BodyFactory, count: int) -> None:
    for _ in range(count):
        body = bodies.webhook_body()
        _expect(
            "POST /webhooks/fingerprint",
            *client.post("/webhooks/fingerprint", body, {SIGNATURE_HEADER: sign(body)}),
            200,
        )
