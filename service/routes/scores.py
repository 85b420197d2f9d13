"""The checkout score API and the visitor lookup (API key required)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter

from service.auth import SECURITY, require_api_key
from service.checkout import ScoreRequest, ScoreResponse, ScoreService, VisitorView
from service.errors import error_responses


def provide_scores(state: State) -> ScoreService:
    service: ScoreService = state.scores
    return service


class ScoreController(Controller):
    path = "/v1"
    tags = ["scores"]
    guards = [require_api_key]
    security = SECURITY
    dependencies = {"scores": Provide(provide_scores, sync_to_thread=False)}

    @post(
        "/score",
        operation_id="scoreVisitor",
        status_code=200,
        responses=error_responses(400, 401, 404, 422, 503),
    )
    async def score(
        self, data: JSONBody[ScoreRequest], scores: NamedDependency[ScoreService]
    ) -> Response[ScoreResponse]:
        """Score a visitor for a checkout: by requestId, visitorId, inline event or IPQS result."""
        answer, stages = await scores.score(data)
        background = BackgroundTask(scores.record, stages) if stages else None
        return Response(answer, background=background)

    @get(
        "/visitors/{visitor_id:str}",
        operation_id="getVisitor",
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
