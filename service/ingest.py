"""The webhook path: verify → decode → dedupe → specs → outbox commit → answer.

Scoring slots in between decode and specs (the next step of the flow in DESIGN.md).
"""

from __future__ import annotations

import msgspec

from service.decode import decode_fingerprint
from service.errors import Unauthorized
from service.outbox import Outbox
from service.settings import Secret
from service.signature import HEADER, is_valid_signature
from service.specs import Skipped, build_specs


class WebhookAnswer(msgspec.Struct, rename="camel", frozen=True):
    request_id: str
    emitted: list[str]
    skipped: list[Skipped]


class Ingested(msgspec.Struct, frozen=True):
    answer: WebhookAnswer
    replayed: bool


_encoder = msgspec.json.Encoder()
_answer_decoder = msgspec.json.Decoder(WebhookAnswer)


class Ingestor:
    def __init__(self, outbox: Outbox, fingerprint_secret: Secret | None) -> None:
        self._outbox = outbox
        self._secret = fingerprint_secret

    async def fingerprint(self, body: bytes, signature: str | None) -> Ingested:
        if self._secret is not None and not is_valid_signature(
            signature, body, self._secret.reveal()
        ):
            raise Unauthorized(f"missing or invalid {HEADER} header", field=HEADER)
        obs = decode_fingerprint(body)
        scope = obs.idempotency_scope
        # Cheap check first so a retry does no work; the commit below settles races.
        previous = await self._outbox.recall(scope, obs.request_id)
        if previous is not None:
            return Ingested(_answer_decoder.decode(previous), replayed=True)
        specs = build_specs(obs)
        answer = WebhookAnswer(obs.request_id, specs.emitted, specs.skipped)
        fresh, stored = await self._outbox.commit(
            scope, obs.request_id, _encoder.encode(answer), [m for _, m in specs.messages]
        )
        if fresh:
            return Ingested(answer, replayed=False)
        return Ingested(_answer_decoder.decode(stored), replayed=True)
