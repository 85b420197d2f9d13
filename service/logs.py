"""Structured logs: one JSON object per line, with the request id of the request being served.

Every request gets an id — the caller's ``x-request-id`` when it is a sane token, else a
fresh one — echoed in the response header and attached to every log line written while
serving it, so a webhook, its Redis errors and its answer can be found together. Logging is
configured by the entry points (``python -m service run``, ``app_from_env``), not by the app
factory: it is process-wide.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.asgi_headers import scope_header

HEADER = b"x-request-id"
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = scope_header(scope, HEADER)
        # 32 hex digits like uuid4().hex, at a quarter of its cost.
        request_id = given.decode() if given and _SANE.match(given) else secrets.token_hex(16)
        token = _current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            _current.reset(token)

    return middleware


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _current.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request line at INFO, Segment's URL included: keep it for debugging.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
