"""Observation → reuse signals (one Redis round trip) → features → model → ``Risk``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from service.features import FeatureInput, FeatureSpec
from service.history import HistoryEntry
from service.identifiers import IdentifierPolicy
from service.lists import AccessLists
from service.lua import LuaScript, Sendable
from service.model import Reason, Risk, RiskModel, Row, Thresholds
from service.observation import IpqsSignals, Observation
from service.reuse import RELATION_NAMES, EntityRefs, ReuseSnapshot, ReuseStore
from service.reuse_memory import MemoryReuseStore
from service.specs import iso8601

_ipqs_encoder = msgspec.msgpack.Encoder()
_ipqs_decoder = msgspec.msgpack.Decoder(IpqsSignals)

# The reuse counts surfaced as traits / signals (the rest stay model inputs).
KEY_RELATIONS = ("users_per_device", "devices_per_user", "ips_per_device", "devices_per_ip")


def ipqs_blob(obs: Observation) -> bytes | None:
    """An IPQS result's signals, remembered on its user for later observations to join."""
    return _ipqs_encoder.encode(obs.ipqs) if obs.source == "ipqs" and obs.ipqs else None


class Assessment(msgspec.Struct, frozen=True):
    risk: Risk
    refs: EntityRefs
    reuse: ReuseSnapshot
    features: list[float]
    scored_at: datetime


class Scorer:
    """Scores observations. ``assess`` counts reuse in Redis (the service); ``features_in``
    in an in-memory store (batch rescoring, training) — the same refs, features and verdict
    either way."""

    def __init__(
        self,
        *,
        policy: IdentifierPolicy,
        store: ReuseStore | None,
        spec: FeatureSpec,
        model: RiskModel,
        thresholds: Thresholds,
        lists: AccessLists,
    ) -> None:
        self._policy = policy
        self._store = store
        self.spec = spec
        self.model = model
        self.thresholds = thresholds
        self._lists = lists
        # The surfaced counts' names and places in ``ReuseSnapshot.flat``, worked out once.
        width = len(spec.window_labels)
        self._key_counts = [
            (f"{relation}_{label}", RELATION_NAMES.index(relation) * width + index)
            for relation in KEY_RELATIONS
            for index, label in enumerate(spec.window_labels)
        ]

    @property
    def policy(self) -> IdentifierPolicy:
        return self._policy

    def refs(self, obs: Observation, *, count_event: bool = True) -> EntityRefs:
        policy = self._policy
        return EntityRefs(
            device=policy.device(obs.device_kind, obs.visitor_id),
            device_space=obs.device_kind,
            user=policy.user(obs.user_id),
            email=policy.email(obs.email),
            ip=policy.ip(obs.ip),
            country=obs.country.upper() if obs.country and len(obs.country) == 2 else None,
            linked=policy.linked(obs.linked_id),
            event=policy.request(obs.idempotency_scope, obs.request_id) if count_event else None,
        )

    async def assess(
        self,
        obs: Observation,
        *,
        now: datetime | None = None,
        count_event: bool = True,
        before_scoring: Callable[[list[Any]], None] | None = None,
        also: Sequence[Sendable] = (),
        also_scripts: Sequence[LuaScript] = (),
    ) -> Assessment:
        """Record the observation's identifiers in Redis, read the counts back, and score.

        ``also`` rides in the same round trip; ``before_scoring`` sees its replies first (a
        rate limit refuses there, before any scoring work)."""
        assert self._store is not None, "this scorer has no Redis store"
        await self._policy.ready()
        moment = now or obs.time
        refs = self.refs(obs, count_event=count_event)
        reuse, replies = await self._store.observe_with(
            refs,
            int(moment.timestamp() * 1000),
            ipqs_blob=ipqs_blob(obs),
            also=also,
            also_scripts=also_scripts,
        )
        if before_scoring is not None:
            before_scoring(replies)
        return self.evaluate(obs, refs, reuse, moment)

    def features_in(
        self, store: MemoryReuseStore, obs: Observation, time_ms: int | None = None
    ) -> list[float]:
        """The features ``assess`` would score, at the observation's own time (``time_ms``
        when the caller has it already) against an in-memory store, without scoring (batch
        paths score many rows at once)."""
        moment = int(obs.time.timestamp() * 1000) if time_ms is None else time_ms
        reuse = store.observe(self.refs(obs), moment, ipqs_blob=ipqs_blob(obs))
        return self.features(obs, reuse, obs.time)

    def evaluate(
        self, obs: Observation, refs: EntityRefs, reuse: ReuseSnapshot, moment: datetime
    ) -> Assessment:
        features = self.features(obs, reuse, moment)
        return Assessment(self.verdict(obs, features), refs, reuse, features, datetime.now(UTC))

    def features(self, obs: Observation, reuse: ReuseSnapshot, moment: datetime) -> list[float]:
        ipqs = obs.ipqs
        if ipqs is None and reuse.ipqs_blob is not None:
            ipqs = _ipqs_decoder.decode(reuse.ipqs_blob)
        return self.spec.row(FeatureInput(obs, reuse, ipqs, moment))

    def verdict(
        self,
        obs: Observation,
        features: Row,
        model: RiskModel | None = None,
        thresholds: Thresholds | None = None,
    ) -> Risk:
        """The allow / deny lists first, then ``model`` (default: this scorer's)."""
        model = model or self.model
        listed = self.listed(obs, model)
        if listed is not None:
            return listed
        return model.risk(features, thresholds or self.thresholds)

    def listed(self, obs: Observation, model: RiskModel | None = None) -> Risk | None:
        """The allow / deny list verdict for ``obs``, if a list names it."""
        match = self._lists.match(obs.visitor_id, obs.user_id, obs.ip)
        if match is None:
            return None
        return Risk(
            score=0 if match.allow else 100,
            level="low" if match.allow else "high",
            action="allow" if match.allow else "block",
            reasons=[Reason(match.code, 0.0)],
            model_version=(model or self.model).version,
        )

    def key_counts(self, reuse: ReuseSnapshot) -> dict[str, int]:
        flat = reuse.flat
        return {name: flat[at] for name, at in self._key_counts}

    def history_entry(self, obs: Observation, assessment: Assessment) -> HistoryEntry:
        risk = assessment.risk
        return HistoryEntry(
            request_id=obs.request_id,
            source=obs.source,
            time=obs.time,
            score=risk.score,
            level=risk.level,
            action=risk.action,
            reasons=[reason.code for reason in risk.reasons],
            model_version=risk.model_version,
        )

    def traits(self, assessment: Assessment, prefix: str) -> dict[str, Any]:
        """The flat, destination-friendly traits riskwire adds to Segment specs."""
        risk = assessment.risk
        traits: dict[str, Any] = {
            "score": risk.score,
            "level": risk.level,
            "action": risk.action,
            "reasons": [reason.code for reason in risk.reasons],
            **self.key_counts(assessment.reuse),
            "scored_at": iso8601(assessment.scored_at),
            "model_version": risk.model_version,
        }
        return {prefix + name: value for name, value in traits.items()}
