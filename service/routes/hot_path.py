"""The routes that carry traffic (the score API and both webhooks), answered from ASGI.

They are declared as ordinary Litestar handlers, so the router resolves them, OpenAPI
documents their bodies, headers and answers, and the exception, request-id and metrics
layers wrap them. Their requests, though, are answered by ``hot_routes``, the innermost app
middleware: for a handler carrying a lane (``opt={LANE: lane}``) it reads the body (the size
limit enforced here), runs the lane and sends the encoded answer, or the error answer of
``service.errors``. That skips the per-request machinery of an HTTP route (a ``Request``,
the signature model, hooks, an exit stack, a response object): in process, a score request
went from 0.42 to 0.35 ms of CPU and a webhook from 0.55 to 0.47 (32 at a time, best of 4).

A lane's handler body runs the same lane through Litestar's ``Request`` (``through``), so the
route answers alike in an app built without the middleware; a test holds the two together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec
from litestar import Request
from litestar.enums import MediaType, ScopeType
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.asgi_headers import scope_header
from service.errors import PayloadTooLarge, error_response

LANE = "riskwire.lane"
_JSON = MediaType.JSON.value.encode()
_encoder = msgspec.json.Encoder()


class Answer(NamedTuple):
    """A lane's 200 answer: the JSON body and any extra headers (lower-case names)."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


Lane = Callable[[Scope, bytes], Awaitable[Answer]]


def encoded(answer: msgspec.Struct, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Answer:
    return Answer(_encoder.encode(answer), headers)


def documented_answer(answer: type[msgspec.Struct], description: str) -> dict[int, ResponseSpec]:
    """The OpenAPI entry for a handler whose 200 answer is ``answer`` encoded by hand."""
    return {200: ResponseSpec(answer, description=description)}


async def through(lane: Lane, request: Request[Any, Any, Any]) -> ASGIResponse:
    """``lane`` answering through Litestar's request and response objects."""
    answer = await lane(request.scope, await request.body())
    return ASGIResponse(
        body=answer.body,
        media_type=MediaType.JSON,
        headers={name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers},
    )


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None if the client went away first; 413 past ``limit`` bytes,
    refused on the declared length before any of it is read."""
    declared = scope_header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("request body exceeds the configured limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("request body exceeds the configured limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def hot_routes(max_body_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """The innermost app middleware: answers the requests of handlers that carry a lane."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            handler = scope.get("route_handler")
            lane: Lane | None = handler.opt.get(LANE) if handler is not None else None
            if lane is None or scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            try:
                body = await read_body(scope, receive, max_body_bytes)
                if body is None:  # nobody left to answer
                    return
                answer = await lane(scope, body)
            except Exception as exc:
                # Answered here, inside the request-id and metrics layers, as Litestar's
                # exception layer would answer it (that layer sits outside them).
                request: Request[Any, Any, Any] = Request(scope, receive, send)
                response = error_response(request, exc).to_asgi_response(None, request)
                await response(scope, receive, send)
                return
            start: Message = {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", _JSON),
                    (b"content-length", b"%d" % len(answer.body)),
                    *answer.headers,
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": answer.body, "more_body": False})

        return serve

    return middleware
