"""Inbound device-intelligence webhooks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.enums import ParamType
from litestar.openapi.spec import Example, OpenAPIType, Parameter, Schema
from litestar.response.base import ASGIResponse
from litestar.types import Scope

from service.asgi_headers import scope_header
from service.auth import SECURITY, ApiKeys
from service.errors import error_responses
from service.fingerprint_v3 import WebhookV3
from service.fingerprint_v4 import WebhookV4
from service.ingest import Ingested, Ingestor, WebhookAnswer
from service.ipqs import IpqsResult
from service.openapi import json_body
from service.routes.hot_path import LANE, Answer, documented_answer, encoded, through
from service.signature import HEADER

_SIGNATURE = HEADER.encode()
_REPLAYED = ((b"riskwire-replayed", b"true"),)


def _answer(result: Ingested) -> Answer:
    """Both webhooks' answer: a replayed delivery gets the first answer, marked as such."""
    return encoded(result.answer, _REPLAYED if result.replayed else ())


async def fingerprint_lane(scope: Scope, body: bytes) -> Answer:
    """``POST /webhooks/fingerprint`` (``service.routes.hot_path``)."""
    # A subscript, not an attribute: State answers an attribute only after the ordinary
    # lookup has failed and raised, ~0.7 us a request.
    ingestor: Ingestor = scope["litestar_app"].state["ingestor"]
    raw = scope_header(scope, _SIGNATURE)
    return _answer(await ingestor.fingerprint(body, None if raw is None else raw.decode("latin-1")))


async def ipqs_lane(scope: Scope, body: bytes) -> Answer:
    """``POST /webhooks/ipqs``: a checkout API key, then the result."""
    state = scope["litestar_app"].state
    keys: ApiKeys = state["checkout_keys"]
    keys.verify(scope)
    ingestor: Ingestor = state["ingestor"]
    return _answer(await ingestor.ipqs(body))


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @post(
        "/fingerprint",
        operation_id="ingestFingerprintWebhook",
        status_code=200,
        summary="Ingest a Fingerprint identification webhook (v3 or v4)",
        responses={
            **documented_answer(WebhookAnswer, "What was emitted or skipped, and the verdict"),
            **error_responses(400, 401, 413, 422, 503),
        },
        operation_class=json_body(
            WebhookV3,
            WebhookV4,
            description="A Fingerprint identification event, legacy v3 or v4; signed when a "
            "webhook secret is configured. Unknown fields are ignored.",
            headers=[
                Parameter(
                    name=HEADER,
                    param_in=ParamType.HEADER,
                    required=False,
                    schema=Schema(type=OpenAPIType.STRING),
                    description="`v1=<hex HMAC-SHA256 of the body>`; required when a secret is set",
                    examples={"signature": Example(value=f"v1={64 * '0'}")},
                )
            ],
        ),
        opt={LANE: fingerprint_lane},
    )
    async def fingerprint(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """Verify, decode, deduplicate and enqueue the Segment specs of one identification event."""
        return await through(fingerprint_lane, request)

    @post(
        "/ipqs",
        operation_id="ingestIpqsResult",
        status_code=200,
        summary="Ingest an IPQS device fingerprint result (API key required)",
        security=SECURITY,
        responses={
            **documented_answer(WebhookAnswer, "What was emitted or skipped, and the verdict"),
            **error_responses(400, 401, 413, 422, 503),
        },
        operation_class=json_body(
            IpqsResult, description="An IPQS Device Fingerprint result; unknown fields ignored."
        ),
        opt={LANE: ipqs_lane},
    )
    async def ipqs(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """Score an IPQS result, feed its device and user into reuse signals, identify its user."""
        return await through(ipqs_lane, request)
