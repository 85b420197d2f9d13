"""Errors riskwire answers with, and how each becomes a JSON response.

::

    RiskwireError                 (any error with an HTTP status and a stable code)
    ├── MalformedBody             400  body is not JSON
    ├── Unauthorized              401  missing / bad signature or API key
    ├── Forbidden                 403  the route is switched off (admin API without keys)
    ├── NotFound                  404
    ├── PayloadTooLarge           413
    ├── InvalidPayload            422  JSON of the wrong shape; names the field path
    ├── TooManyRequests           429  (ratelimit.py) with Retry-After
    └── ServiceUnavailable        503  Redis unreachable; the caller should retry

Every error body is ``{"error": {"status", "code", "message", "field"?}}``. Unexpected
exceptions become a bare 500 whose body says nothing about internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError

log = logging.getLogger("riskwire.errors")


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class RiskwireError(Exception):
    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}

    def detail(self) -> ErrorDetail:
        return ErrorDetail(self.status, self.code, self.message, self.field)


class MalformedBody(RiskwireError):
    status = 400
    code = "malformed_json"


class Unauthorized(RiskwireError):
    status = 401
    code = "unauthorized"


class Forbidden(RiskwireError):
    status = 403
    code = "forbidden"


class NotFound(RiskwireError):
    status = 404
    code = "not_found"


class PayloadTooLarge(RiskwireError):
    status = 413
    code = "payload_too_large"


class InvalidPayload(RiskwireError):
    status = 422
    code = "invalid_payload"


class ServiceUnavailable(RiskwireError):
    status = 503
    code = "unavailable"


_DESCRIPTIONS = {
    400: "The body is not JSON, or a parameter is malformed",
    401: "Missing or invalid signature / API key",
    403: "The admin API is disabled: no RISKWIRE_ADMIN_API_KEYS are configured",
    404: "Not found",
    413: "The body exceeds the configured size limit",
    422: "The JSON does not have the expected shape; `field` names the path",
    429: "Over the API key's rate limit; see Retry-After",
    503: "Redis is unreachable; retry later",
}


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a route can give."""
    return {s: ResponseSpec(ErrorBody, description=_DESCRIPTIONS[s]) for s in statuses}


_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `(?P<path>\$[^`]*)`$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def invalid_payload(exc: msgspec.ValidationError) -> InvalidPayload:
    """Turn msgspec's message ("Expected `str`, got `int` - at `$.a.b`") into a field path."""
    text = str(exc)
    match = _AT_PATH.match(text)
    message, path = (match["msg"], match["path"]) if match else (text, "$")
    missing = _MISSING.match(message)
    if missing:
        path = f"{path}.{missing['name']}"
        message = "required field is missing"
    return InvalidPayload(message, field=path)


def _respond(request: Request[Any, Any, Any], detail: ErrorDetail) -> Response[ErrorBody]:
    return Response(ErrorBody(detail), status_code=detail.status, media_type="application/json")


def _riskwire(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    assert isinstance(exc, RiskwireError)
    response = _respond(request, exc.detail())
    response.headers.update(exc.headers)
    return response


def _http(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 413:
        detail = PayloadTooLarge("request body exceeds the configured limit").detail()
    elif isinstance(exc, ValidationException):
        message, field = _validation_detail(exc.extra)
        detail = ErrorDetail(400, "invalid_request", message or exc.detail, field)
    else:
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        code = "internal_error" if status >= 500 else codes.get(status, f"http_{status}")
        detail = ErrorDetail(status, code, exc.detail)
    return _respond(request, detail)


def _validation_detail(extra: object) -> tuple[str | None, str | None]:
    """Litestar's first validation problem as (message, field): body fields as JSON paths."""
    if not (isinstance(extra, list) and extra and isinstance(extra[0], dict)):
        return None, None
    problem = extra[0]
    message = problem.get("message")
    key = problem.get("key")
    field: str | None
    if problem.get("source") == "body":
        field = "$" if key in (None, "data") else f"$.{key}"
    else:
        field = None if key is None else str(key)
    return (str(message) if message else None), field


def _redis(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    # The exception text can hold the Redis URL (and its password): log the type only.
    log.error("redis unavailable on %s: %s", request.url.path, type(exc).__name__)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.redis_errors.inc()
    detail = ServiceUnavailable("state store unavailable, retry later").detail()
    return _respond(request, detail)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error on %s", request.url.path)
    return _respond(request, ErrorDetail(500, "internal_error", "internal error"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RiskwireError: _riskwire,
    HTTPException: _http,
    RedisError: _redis,
    Exception: _unexpected,
}


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The answer ``EXCEPTION_HANDLERS`` give ``exc``, for code that runs outside Litestar's
    exception layer (``service.routes.hot_path``)."""
    for kind in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(kind)
        if handler is not None:
            return handler(request, exc)
    return _unexpected(request, exc)
