"""The outbox admin API: what ``python -m service outbox`` does, over HTTP, behind admin keys."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter, RawBody

from service.auth import ADMIN_SECURITY, require_admin_key
from service.errors import error_responses
from service.openapi import json_body
from service.outbox import Outbox, OutboxStats
from service.outbox_admin import (
    MAX_LISTED,
    ParkedMessage,
    ParkedSelection,
    Purged,
    Replayed,
    describe,
    selected_ids,
)

_SELECTION = (
    'Either `{"ids": [...]}` (entry ids from `GET /admin/outbox/parked`, up to 1,000) or '
    '`{"all": true}`, not both.'
)


def provide_outbox(state: State) -> Outbox:
    outbox: Outbox = state.outbox
    return outbox


class AdminController(Controller):
    path = "/admin/outbox"
    tags = ["admin"]
    guards = [require_admin_key]
    security = ADMIN_SECURITY
    dependencies = {"outbox": Provide(provide_outbox, sync_to_thread=False)}

    @get("/", operation_id="getOutboxStats", responses=error_responses(401, 403, 503))
    async def stats(self, outbox: NamedDependency[Outbox]) -> OutboxStats:
        """Outbox length, messages in flight, parked messages and consumers."""
        return await outbox.stats()

    @get(
        "/parked",
        operation_id="listParkedMessages",
        responses=error_responses(400, 401, 403, 503),
    )
    async def parked(
        self,
        outbox: NamedDependency[Outbox],
        count: Annotated[
            int, QueryParameter(ge=1, le=MAX_LISTED, description="how many to list, oldest first")
        ] = 100,
    ) -> list[ParkedMessage]:
        """Parked (dead-letter) messages with Segment's error, oldest first."""
        return describe(await outbox.parked(count=count))

    @post(
        "/parked/replay",
        operation_id="replayParkedMessages",
        status_code=200,
        responses=error_responses(400, 401, 403, 413, 422, 503),
        operation_class=json_body(ParkedSelection, description=_SELECTION),
    )
    async def replay(self, body: RawBody, outbox: NamedDependency[Outbox]) -> Replayed:
        """Put parked messages back in the outbox for another delivery attempt."""
        return Replayed(await outbox.replay_parked(selected_ids(body)))

    @post(
        "/parked/purge",
        operation_id="purgeParkedMessages",
        status_code=200,
        responses=error_responses(400, 401, 403, 413, 422, 503),
        operation_class=json_body(ParkedSelection, description=_SELECTION),
    )
    async def purge(self, body: RawBody, outbox: NamedDependency[Outbox]) -> Purged:
        """Drop parked messages for good."""
        return Purged(await outbox.purge_parked(selected_ids(body)))
