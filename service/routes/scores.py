"""The checkout score API and the visitor lookup (API key required)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, RawBody
from litestar.response.base import ASGIResponse
from litestar.types import Scope

from service.auth import SECURITY, ApiKeys, require_api_key
from service.checkout import (
    RescoreRequest,
    RescoreResult,
    ScoreRequest,
    ScoreResponse,
    ScoreService,
    VisitorView,
)
from service.errors import error_responses
from service.labels import LabelBatch, LabelsRecorded
from service.openapi import json_body
from service.routes.hot_path import LANE, Answer, documented_answer, encoded, through


def provide_scores(state: State) -> ScoreService:
    service: ScoreService = state.scores
    return service


async def score_lane(scope: Scope, body: bytes) -> Answer:
    """``POST /v1/score``: the API key, then the verdict (``service.routes.hot_path``)."""
    # Subscripts, not attributes: State answers an attribute only after the ordinary lookup
    # has failed and raised, ~0.7 us each.
    state = scope["litestar_app"].state
    scores: ScoreService = state["scores"]
    keys: ApiKeys = state["checkout_keys"]
    return encoded(await scores.score(body, keys.key_id(scope)))


class ScoreController(Controller):
    path = "/v1"
    tags = ["scores"]
    security = SECURITY
    dependencies = {"scores": Provide(provide_scores, sync_to_thread=False)}

    @post(
        "/score",
        operation_id="scoreVisitor",
        status_code=200,
        responses={
            **documented_answer(ScoreResponse, "The verdict: score, level, action, reasons"),
            **error_responses(400, 401, 404, 413, 422, 429, 503),
        },
        operation_class=json_body(
            ScoreRequest,
            description="At least one of requestId, visitorId, event (a Fingerprint v3 or v4 "
            "event) or ipqs; userId / email / ip are authoritative. Unknown fields are refused.",
        ),
        opt={LANE: score_lane},
    )
    async def score(self, request: Request[Any, Any, Any]) -> ASGIResponse:
        """Score a visitor for a checkout: by requestId, visitorId, inline event or IPQS result."""
        return await through(score_lane, request)

    @post(
        "/labels",
        operation_id="recordLabels",
        status_code=200,
        before_request=require_api_key,
        responses=error_responses(400, 401, 413, 422, 503),
        operation_class=json_body(
            LabelBatch,
            description="Outcomes (fraud, chargeback, legit, ...) for request ids, users or "
            "visitors; joined with the feature log by `python -m service export-training`.",
        ),
    )
    async def labels(self, body: RawBody, scores: NamedDependency[ScoreService]) -> LabelsRecorded:
        """Record outcome labels for retraining."""
        return LabelsRecorded(await scores.record_labels(body))

    @post(
        "/rescore",
        operation_id="rescoreVisitorOrUser",
        status_code=200,
        before_request=require_api_key,
        responses=error_responses(400, 401, 404, 422, 503),
        operation_class=json_body(
            RescoreRequest,
            description="Exactly one of visitorId and userId: its events still held in Redis "
            "are rescored with the current model and re-sent to Segment as identifies.",
        ),
    )
    async def rescore(self, body: RawBody, scores: NamedDependency[ScoreService]) -> RescoreResult:
        """Rescore a visitor's or user's held events with the current model and re-emit."""
        return await scores.rescore(body)

    @get(
        "/visitors/{visitor_id:str}",
        operation_id="getVisitor",
        before_request=require_api_key,
        responses=error_responses(401, 422, 503),
    )
    async def visitor(
        self,
        visitor_id: Annotated[
            str, PathParameter(max_length=256, description="Fingerprint visitorId")
        ],
        scores: NamedDependency[ScoreService],
    ) -> VisitorView:
        """Current reuse counts of a visitor's device and its latest scores."""
        return await scores.visitor(visitor_id)
