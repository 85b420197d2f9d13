"""The synchronous score API for checkout backends; visitor lookup, labels and rescoring."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from service.decode import decode_fingerprint, decode_with, from_ipqs
from service.errors import InvalidPayload, MalformedBody, NotFound, RiskwireError
from service.history import DeferredWrites, HistoryEntry, Memory
from service.identifiers import canonical_ip
from service.ipqs import IpqsResult
from service.labels import LabelBatch, LabelStore
from service.lua import Command
from service.metrics import Metrics
from service.model import Reason
from service.observation import Observation
from service.outbox import Outbox
from service.ratelimit import RateLimiter
from service.reuse import RELATIONS, EntityRefs, ReuseStore
from service.scoring import Assessment, Scorer
from service.specs import iso8601, rescore_identify

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class ScoreRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Score a visitor now. At least one of requestId, visitorId, event or ipqs is needed."""

    request_id: Id | None = None
    visitor_id: Id | None = None
    user_id: Id | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    ipqs: IpqsResult | None = None
    # Kept as raw JSON and decoded once by the Fingerprint decoders, like a webhook body.
    event: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class ScoreResponse(msgspec.Struct, rename="camel", kw_only=True):
    request_id: str | None
    visitor_id: str | None
    score: int
    level: str
    action: str
    reasons: list[Reason]
    signals: dict[str, Any]
    model_version: str


class VisitorView(msgspec.Struct, rename="camel", kw_only=True):
    visitor_id: str
    first_seen_at: str | None
    counts: dict[str, dict[str, int]]
    recent_scores: list[HistoryEntry]


class RescoreRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Exactly one of visitorId and userId."""

    visitor_id: Id | None = None
    user_id: Id | None = None


class RescoredEvent(msgspec.Struct, rename="camel", kw_only=True):
    request_id: str
    time: str
    score: int
    level: str
    action: str
    previous_score: int
    previous_action: str


class RescoreResult(msgspec.Struct, rename="camel", kw_only=True):
    model_version: str
    rescored: int
    emitted: int
    unavailable: int  # events in the history whose stored observation has expired
    events: list[RescoredEvent]


_request_decoder = msgspec.json.Decoder(ScoreRequest)
_rescore_decoder = msgspec.json.Decoder(RescoreRequest)
_labels_decoder = msgspec.json.Decoder(LabelBatch)


def decode_score_request(body: bytes) -> ScoreRequest:
    if not body:
        raise MalformedBody("body is empty")
    return decode_with(_request_decoder, body)


class ScoreService:
    def __init__(
        self,
        *,
        scorer: Scorer,
        store: ReuseStore,
        memory: Memory,
        labels: LabelStore,
        deferred: DeferredWrites,
        outbox: Outbox,
        limiter: RateLimiter,
        trait_prefix: str,
        clock: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._scorer = scorer
        self._store = store
        self._memory = memory
        self._labels = labels
        self._deferred = deferred
        self._outbox = outbox
        self._limiter = limiter
        self._prefix = trait_prefix
        self._clock = clock
        # The flags an answer lists when set: (index in the feature vector, name).
        self._flags = [
            (index, feature.name)
            for index, feature in enumerate(scorer.spec.features)
            if feature.kind.startswith("flag:")
        ]

    async def score(self, body: bytes, api_key_id: str | None = None) -> ScoreResponse:
        """Score now; history and the stored observation are written in the background."""
        request = decode_score_request(body)
        now = self._clock()
        now_ms = int(now.timestamp() * 1000)
        limiter = self._limiter
        limited = api_key_id is not None and limiter.enabled
        if request.ip is not None and canonical_ip(request.ip) is None:
            raise InvalidPayload("not an IP address", field="$.ip")
        obs, stored = await self._resolve(request, now)
        changes: dict[str, Any] = {}
        if request.user_id is not None:
            changes["user_id"] = request.user_id
        if request.email is not None:
            changes["email"] = request.email
        if request.ip is not None:
            changes["ip"] = request.ip
        if request.ipqs is not None and obs.source != "ipqs":
            changes["ipqs"] = from_ipqs(request.ipqs, now).ipqs
        if changes:
            obs = msgspec.structs.replace(obs, **changes)
        assessment = await self._scorer.assess(
            obs,
            now=now,
            count_event=bool(obs.request_id),
            also=limiter.commands(api_key_id, now_ms) if limited and api_key_id else [],
            before_scoring=(lambda replies: limiter.check(replies, now_ms)) if limited else None,
        )
        later: list[Command] = []
        if obs.request_id and not stored:
            later.append(self._memory.observation_command(obs))
        if obs.request_id:
            spec_hash = self._scorer.spec.hash
            later.append(
                self._labels.feature_command(obs, assessment.refs, assessment.features, spec_hash)
            )
        if assessment.refs.device is not None and obs.request_id:
            entry = self._scorer.history_entry(obs, assessment)
            later += self._memory.history_commands(assessment.refs.device, entry)
        self._deferred.add(later)
        if self._metrics is not None:
            self._metrics.count_score(assessment.risk.level, obs.source)
        return self._answer(obs, assessment)

    async def _resolve(self, request: ScoreRequest, now: datetime) -> tuple[Observation, bool]:
        """The observation to score, and whether it came from what Redis holds."""
        event = bytes(request.event) if request.event is not msgspec.UNSET else b"null"
        if event != b"null":
            try:
                obs = decode_fingerprint(event)
            except RiskwireError as exc:
                field = "$.event" + (exc.field or "$")[1:]
                raise type(exc)(exc.message, field=field) from None
            if request.request_id is not None and request.request_id != obs.request_id:
                raise InvalidPayload(
                    "requestId differs from the inline event's request id", field="$.requestId"
                )
            return obs, False
        if request.request_id is not None:
            stored = await self._memory.observation("fp", request.request_id)
            if stored is None:
                raise NotFound(
                    f"unknown requestId {request.request_id!r}: no webhook for it arrived (or it "
                    "expired); send the Fingerprint event inline as `event`",
                    field="$.requestId",
                )
            if request.visitor_id is not None and request.visitor_id != stored.visitor_id:
                raise InvalidPayload(
                    "visitorId differs from the stored event's visitor", field="$.visitorId"
                )
            return stored, True
        if request.ipqs is not None and request.visitor_id is None:
            return from_ipqs(request.ipqs, now), False
        if request.visitor_id is not None:
            return Observation(
                source="api", request_id="", visitor_id=request.visitor_id, time=now
            ), False
        raise InvalidPayload(
            "nothing to score: give requestId, visitorId, event or ipqs", field="$"
        )

    def _answer(self, obs: Observation, assessment: Assessment) -> ScoreResponse:
        risk = assessment.risk
        signals: dict[str, Any] = dict(self._scorer.key_counts(assessment.reuse))
        features = assessment.features
        for index, name in self._flags:
            if features[index]:
                signals[name] = True
        if obs.ipqs is not None and obs.ipqs.fraud_chance is not None:
            signals["ipqs_fraud_chance"] = obs.ipqs.fraud_chance
        if obs.confidence is not None:
            signals["confidence"] = obs.confidence
        return ScoreResponse(
            request_id=obs.request_id or None,
            visitor_id=obs.visitor_id,
            score=risk.score,
            level=risk.level,
            action=risk.action,
            reasons=risk.reasons,
            signals=signals,
            model_version=risk.model_version,
        )

    async def record_labels(self, body: bytes) -> int:
        if not body:
            raise MalformedBody("body is empty")
        return await self._labels.record(decode_with(_labels_decoder, body))

    async def rescore(self, body: bytes) -> RescoreResult:
        """Rescore what Redis holds for one visitor or user with the current model, and send
        the new verdicts to Segment as identifies dated at their events."""
        if not body:
            raise MalformedBody("body is empty")
        request = decode_with(_rescore_decoder, body)
        if (request.visitor_id is None) == (request.user_id is None):
            raise InvalidPayload("give exactly one of visitorId and userId", field="$")
        policy = self._scorer.policy
        await policy.ready()
        if request.visitor_id is not None:
            device = policy.device("fp", request.visitor_id)
            devices = [device] if device else []
        else:
            user = policy.user(request.user_id)
            devices = await self._memory.devices_of(user) if user else []
        history = [entry for device in devices for entry in await self._memory.recent(device)]
        if not history:
            raise NotFound("no scored events are held for it", field="$")
        observations = await self._memory.observations(
            [("ipqs" if e.source == "ipqs" else "fp", e.request_id) for e in history]
        )
        results: list[RescoredEvent] = []
        messages: list[bytes] = []
        now = self._clock()
        for entry, obs in zip(history, observations, strict=True):
            if obs is None or (request.user_id is not None and obs.user_id != request.user_id):
                continue
            refs = self._scorer.refs(obs)
            reuse = await self._store.observe(refs, int(obs.time.timestamp() * 1000), write=False)
            risk = self._scorer.verdict(obs, self._scorer.features(obs, reuse, obs.time))
            results.append(
                RescoredEvent(
                    request_id=obs.request_id,
                    time=iso8601(obs.time),
                    score=risk.score,
                    level=risk.level,
                    action=risk.action,
                    previous_score=entry.score,
                    previous_action=entry.action,
                )
            )
            message = rescore_identify(obs, risk, self._prefix, now)
            if message is not None:
                messages.append(message)
        emitted = await self._outbox.enqueue(messages)
        return RescoreResult(
            model_version=self._scorer.model.version,
            rescored=len(results),
            emitted=emitted,
            unavailable=sum(obs is None for obs in observations),
            events=results,
        )

    async def visitor(self, visitor_id: str) -> VisitorView:
        await self._scorer.policy.ready()
        device = self._scorer.policy.device("fp", visitor_id)
        if device is None:
            raise InvalidPayload("not a usable visitor id", field="visitorId")
        now_ms = int(self._clock().timestamp() * 1000)
        reuse = await self._store.observe(EntityRefs(device=device), now_ms, write=False)
        labels = self._scorer.spec.window_labels
        counts = {
            name: dict(zip(labels, reuse.counts[name], strict=True))
            for name, _, _ in RELATIONS["device"]
        }
        first = reuse.device_first_seen_ms
        return VisitorView(
            visitor_id=visitor_id,
            first_seen_at=iso8601(datetime.fromtimestamp(first / 1000, tz=UTC))
            if first is not None
            else None,
            counts=counts,
            recent_scores=await self._memory.recent(device),
        )
