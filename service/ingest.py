"""The webhook paths: verify → decode → dedupe → score → specs → outbox commit → answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from service.decode import decode_fingerprint, decode_ipqs
from service.errors import Unauthorized
from service.history import Memory
from service.labels import LabelStore
from service.metrics import Metrics
from service.observation import Observation
from service.outbox import Outbox
from service.scoring import Scorer
from service.settings import Secret
from service.signature import HEADER, is_valid_signature
from service.specs import Skipped, Specs, build_ipqs_specs, build_specs


class RiskSummary(msgspec.Struct, frozen=True):
    score: int
    level: str
    action: str


class WebhookAnswer(msgspec.Struct, rename="camel", frozen=True, omit_defaults=True):
    request_id: str
    emitted: list[str]
    skipped: list[Skipped]
    risk: RiskSummary | None = None


class Ingested(msgspec.Struct, frozen=True):
    answer: WebhookAnswer
    replayed: bool


_encoder = msgspec.json.Encoder()
_answer_decoder = msgspec.json.Decoder(WebhookAnswer)


class Ingestor:
    def __init__(
        self,
        *,
        outbox: Outbox,
        memory: Memory,
        labels: LabelStore,
        scorer: Scorer,
        fingerprint_secret: Secret | None,
        trait_prefix: str,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._outbox = outbox
        self._memory = memory
        self._labels = labels
        self._scorer = scorer
        self._secret = fingerprint_secret
        self._prefix = trait_prefix

    async def fingerprint(self, body: bytes, signature: str | None) -> Ingested:
        if self._secret is not None and not is_valid_signature(
            signature, body, self._secret.reveal()
        ):
            raise Unauthorized(f"missing or invalid {HEADER} header", field=HEADER)
        obs = decode_fingerprint(body)
        return await self._ingest(obs, build_specs)

    async def ipqs(self, body: bytes) -> Ingested:
        obs = decode_ipqs(body, received_at=datetime.now(UTC))
        user = self._scorer.policy.clean(obs.user_id)  # hygiene only: no key needed

        def specs(obs: Observation, fraud: dict[str, object]) -> Specs:
            ipqs = obs.ipqs
            extra = {
                f"{self._prefix}ipqs_fraud_chance": ipqs.fraud_chance if ipqs else None,
                f"{self._prefix}ipqs_recent_abuse": ipqs.recent_abuse if ipqs else None,
                f"{self._prefix}ipqs_bot_status": ipqs.bot_status if ipqs else None,
                f"{self._prefix}ipqs_success": ipqs.success if ipqs else None,
            }
            traits = {**fraud, **{k: v for k, v in extra.items() if v is not None}}
            return build_ipqs_specs(obs, user, traits)

        return await self._ingest(obs, specs)

    async def _ingest(
        self, obs: Observation, make_specs: Callable[[Observation, dict[str, object]], Specs]
    ) -> Ingested:
        scope = obs.idempotency_scope
        # The answer to an earlier delivery is looked up in the scoring round trip: counting
        # is idempotent per request id, so a retry only wastes the scoring of one event,
        # and a first delivery saves a round trip. The commit below settles races.
        previous: list[bytes | None] = []
        assessment = await self._scorer.assess(
            obs,
            also=[self._outbox.recall_command(scope, obs.request_id)],
            before_scoring=lambda replies: previous.append(replies[0]),
        )
        if previous[0] is not None:
            return Ingested(_answer_decoder.decode(previous[0]), replayed=True)
        if self._metrics is not None:
            self._metrics.count_score(assessment.risk.level, obs.source)
        specs = make_specs(obs, self._scorer.traits(assessment, self._prefix))
        risk = assessment.risk
        answer = WebhookAnswer(
            obs.request_id,
            specs.emitted,
            specs.skipped,
            RiskSummary(risk.score, risk.level, risk.action),
        )
        also = [
            self._memory.observation_command(obs),
            self._labels.feature_command(
                obs, assessment.refs, assessment.features, self._scorer.spec.hash
            ),
        ]
        if assessment.refs.device is not None:
            entry = self._scorer.history_entry(obs, assessment)
            also += self._memory.history_commands(assessment.refs.device, entry)
        fresh, stored = await self._outbox.commit(
            scope,
            obs.request_id,
            _encoder.encode(answer),
            [m for _, m in specs.messages],
            also=also,
        )
        if fresh:
            return Ingested(answer, replayed=False)
        return Ingested(_answer_decoder.decode(stored), replayed=True)
