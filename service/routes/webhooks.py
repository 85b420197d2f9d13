"""Inbound device-intelligence webhooks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import ParamType
from litestar.openapi.spec import Example, OpenAPIType, Parameter, Schema
from litestar.params import RawBody
from litestar.response.base import ASGIResponse

from service.asgi_headers import scope_header
from service.auth import SECURITY, require_api_key
from service.errors import error_responses
from service.fingerprint_v3 import WebhookV3
from service.fingerprint_v4 import WebhookV4
from service.ingest import Ingested, Ingestor, WebhookAnswer
from service.ipqs import IpqsResult
from service.openapi import json_body
from service.routes.hot_path import documented_answer, json_answer
from service.signature import HEADER


def provide_ingestor(state: State) -> Ingestor:
    ingestor: Ingestor = state.ingestor
    return ingestor


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]
    dependencies = {"ingestor": Provide(provide_ingestor, sync_to_thread=False)}

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
    )
    async def fingerprint(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """Verify, decode, deduplicate and enqueue the Segment specs of one identification event."""
        # The hot path: no injection, the answer encoded by hand (service.routes.hot_path).
        ingestor: Ingestor = request.app.state.ingestor
        raw = scope_header(request.scope, HEADER.encode())
        signature = None if raw is None else raw.decode("latin-1")
        return _answer(await ingestor.fingerprint(await request.body(), signature))

    @post(
        "/ipqs",
        operation_id="ingestIpqsResult",
        status_code=200,
        summary="Ingest an IPQS device fingerprint result (API key required)",
        before_request=require_api_key,
        security=SECURITY,
        responses={
            **documented_answer(WebhookAnswer, "What was emitted or skipped, and the verdict"),
            **error_responses(400, 401, 413, 422, 503),
        },
        operation_class=json_body(
            IpqsResult, description="An IPQS Device Fingerprint result; unknown fields ignored."
        ),
    )
    async def ipqs(self, body: RawBody, ingestor: NamedDependency[Ingestor]) -> ASGIResponse:
        """Score an IPQS result, feed its device and user into reuse signals, identify its user."""
        return _answer(await ingestor.ipqs(body))


def _answer(result: Ingested) -> ASGIResponse:
    """Both webhooks' answer: a replayed delivery gets the first answer, marked as such."""
    return json_answer(result.answer, {"riskwire-replayed": "true"} if result.replayed else None)
