"""Inbound device-intelligence webhooks."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, RawBody

from service.auth import SECURITY, require_api_key
from service.errors import error_responses
from service.fingerprint_v3 import WebhookV3
from service.fingerprint_v4 import WebhookV4
from service.ingest import Ingested, Ingestor, WebhookAnswer
from service.ipqs import IpqsResult
from service.openapi import json_body
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
        responses=error_responses(400, 401, 413, 422, 503),
        operation_class=json_body(
            WebhookV3,
            WebhookV4,
            description="A Fingerprint identification event, legacy v3 or v4; signed when a "
            "webhook secret is configured. Unknown fields are ignored.",
        ),
    )
    async def fingerprint(
        self,
        body: RawBody,
        ingestor: NamedDependency[Ingestor],
        signature: Annotated[
            str | None,
            HeaderParameter(
                name=HEADER,
                description="`v1=<hex HMAC-SHA256 of the body>`; required when a secret is set",
                examples=[Example(value=f"v1={64 * '0'}")],
            ),
        ] = None,
    ) -> Response[WebhookAnswer]:
        """Verify, decode, deduplicate and enqueue the Segment specs of one identification event."""
        return _answer(await ingestor.fingerprint(body, signature))

    @post(
        "/ipqs",
        operation_id="ingestIpqsResult",
        status_code=200,
        summary="Ingest an IPQS device fingerprint result (API key required)",
        before_request=require_api_key,
        security=SECURITY,
        responses=error_responses(400, 401, 413, 422, 503),
        operation_class=json_body(
            IpqsResult, description="An IPQS Device Fingerprint result; unknown fields ignored."
        ),
    )
    async def ipqs(
        self, body: RawBody, ingestor: NamedDependency[Ingestor]
    ) -> Response[WebhookAnswer]:
        """Score an IPQS result, feed its device and user into reuse signals, identify its user."""
        return _answer(await ingestor.ipqs(body))


def _answer(result: Ingested) -> Response[WebhookAnswer]:
    headers = {"riskwire-replayed": "true"} if result.replayed else {}
    return Response(result.answer, headers=headers)
