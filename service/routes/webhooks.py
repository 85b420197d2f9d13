"""Inbound device-intelligence webhooks."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, RawBody

from service.errors import error_responses
from service.ingest import Ingestor, WebhookAnswer
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
        result = await ingestor.fingerprint(body, signature)
        headers = {"riskwire-replayed": "true"} if result.replayed else {}
        return Response(result.answer, headers=headers)
