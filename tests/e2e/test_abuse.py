"""Hostile bodies and headers through the whole app: every one gets a 4xx JSON error naming
the problem (or a 2xx where the input is legitimately acceptable), never a 5xx; no response
header echoes a CR/LF; and the service keeps serving afterwards."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.settings import Secret
from tests import server
from tests.payloads import FULL_EXAMPLE, encode, signed, v3

SECRET = "abuse-secret"
AUTH = {"authorization": "Bearer checkout-key"}
LIMIT = 256 * 1024  # raised, so that 100 KB ids fit in a body
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HUGE_INT = b"1" + b"0" * 400
DEEP = 10_000


class Case(NamedTuple):
    name: str
    body: bytes
    status: int
    field: str | None = None  # the error's field, or its start when it ends with "*"
    message: str = ""  # a part of the error message


def splice(document: dict[str, Any], **raw: bytes) -> bytes:
    """``document`` as JSON, with each string value ``"@<name>"`` replaced by raw bytes."""
    body = encode(document)
    for name, literal in raw.items():
        marker = json.dumps(f"@{name}").encode()
        assert marker in body, name
        body = body.replace(marker, literal)
    return body


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def webhook(request_id: str, **overrides: Any) -> dict[str, Any]:
    return v3(FULL_EXAMPLE, requestId=request_id, **overrides)


def traits(request_id: str, value: str) -> dict[str, Any]:
    return v3({"identify": {"userId": "u-1", "traits": {"n": value}}}, requestId=request_id)


FINGERPRINT_CASES = [
    Case("10,000 levels in an unknown member", splice(webhook("a1", x="@X"), X=nested(DEEP)),
         400, None, "nests too deeply"),
    Case("10,000 levels in the tag", splice(traits("a2", "@X"), X=nested(DEEP)),
         400, None, "nests too deeply"),
    Case("40 levels in traits, forwarded as they are", splice(traits("a3", "@X"), X=nested(40)),
         422, "$.tag.integrations.segment.identify.traits.n*", "nested deeper than 32 levels"),
    Case("1e400 in a number", splice(webhook("a4", confidence={"score": "@X"}), X=b"1e400"),
         422, "$.confidence.score", "Number out of range"),
    Case("1e400 in traits", splice(traits("a5", "@X"), X=b"1e400"),
         422, "$.tag.integrations.segment.identify.traits*", "Number out of range"),
    Case("10**400 in traits", splice(traits("a6", "@X"), X=HUGE_INT),
         422, "$.tag.integrations.segment.identify.traits.n", "integer out of the 64-bit range"),
    Case("10**400 as the suspect score",
         splice(webhook("a7", suspectScore={"result": "@X"}), X=HUGE_INT),
         422, "$.suspectScore.result", "<= 2147483647"),
    Case("10**400 as the timestamp", splice(webhook("a8", time=None, timestamp="@X"), X=HUGE_INT),
         422, "$.timestamp", "<= 253402300799999"),
    # -0 is a JSON spelling of zero: nothing wrong with it.
    Case("-0 as a score", splice(webhook("a9", confidence={"score": "@X"}), X=b"-0"), 200),
    Case("-0 as the suspect score", splice(webhook("a10", suspectScore={"result": "@X"}), X=b"-0"),
         200),
    Case("NaN", splice(webhook("a11", confidence={"score": "@X"}), X=b"NaN"),
         400, None, "malformed"),
    Case("Infinity", splice(webhook("a12", confidence={"score": "@X"}), X=b"Infinity"),
         400, None, "malformed"),
    Case("-Infinity", splice(webhook("a13", confidence={"score": "@X"}), X=b"-Infinity"),
         400, None, "malformed"),
    Case("invalid UTF-8 before the JSON", b"\xff\xfe" + encode(webhook("a14")),
         400, None, "malformed"),
    Case("invalid UTF-8 in a string it reads", splice(webhook("a15", url="@X"), X=b'"\xc3\x28"'),
         400, None, "not valid UTF-8"),
    Case("invalid UTF-8 in the request id", splice(webhook("@X"), X=b'"r\xff"'),
         400, None, "not valid UTF-8"),
    # Unknown members are skipped unread and nothing of them is kept or forwarded.
    Case("invalid UTF-8 in an unknown member", splice(webhook("a16", x="@X"), X=b'"\xff"'), 200),
    Case("100 KB requestId", encode(webhook("r" * 100_000)),
         422, "$.requestId", "length <= 256"),
    Case("100 KB visitorId", encode(webhook("a17", visitorId="v" * 100_000)),
         422, "$.visitorId", "length <= 256"),
    Case("100 KB linkedId", encode(webhook("a18", linkedId="l" * 100_000)),
         422, "$.linkedId", "length <= 256"),
    Case("100 KB userId", encode(v3({"identify": {"userId": "u" * 100_000}}, requestId="a19")),
         422, "$.tag.integrations.segment.identify.userId", "length <= 256"),
    Case("100 KB ip", encode(webhook("a20", ip="1" * 100_000)), 422, "$.ip", "length <= 64"),
    Case("CRLF in the requestId", encode(webhook("a21\r\nSet-Cookie: stolen=1")),
         422, "$.requestId", "control characters"),
    Case("NUL in the visitorId", encode(webhook("a22", visitorId="v\x00")),
         422, "$.visitorId", "control characters"),
]  # fmt: skip

IPQS_CASES = [
    Case("10,000 levels", splice({"request_id": "i1", "x": "@X"}, X=nested(DEEP)),
         400, None, "nests too deeply"),
    Case("1e400", splice({"request_id": "i2", "fraud_chance": "@X"}, X=b"1e400"),
         422, "$.fraud_chance", "Number out of range"),
    Case("10**400", splice({"request_id": "i3", "time": "@X"}, X=HUGE_INT),
         422, "$.time", "<= 253402300799"),
    Case("-0", splice({"request_id": "i4", "fraud_chance": "@X"}, X=b"-0"), 200),
    Case("NaN", splice({"request_id": "i5", "fraud_chance": "@X"}, X=b"NaN"),
         400, None, "malformed"),
    Case("invalid UTF-8", b'{"request_id": "\xff\xfe"}', 400, None, "not valid UTF-8"),
    Case("100 KB request_id", encode({"request_id": "i" * 100_000}),
         422, "$.request_id", "length <= 256"),
    Case("100 KB guid", encode({"request_id": "i6", "guid": "g" * 100_000}),
         422, "$.guid", "length <= 512"),
    Case("CRLF in the request_id", encode({"request_id": "i7\r\nX-Injected: 1"}),
         422, "$.request_id", "control characters"),
]  # fmt: skip

SCORE_CASES = [
    Case("10,000 levels as the inline event", splice({"event": "@X"}, X=nested(DEEP)),
         400, None, "nests too deeply"),
    Case("10,000 levels in the inline event",
         splice({"event": webhook("s1", x="@X")}, X=nested(DEEP)),
         400, None, "nests too deeply"),
    Case("10**400 in the inline event's traits",
         splice({"event": traits("s2", "@X")}, X=HUGE_INT),
         422, "$.event.tag.integrations.segment.identify.traits.n", "64-bit"),
    Case("1e400", splice({"ipqs": {"request_id": "s3", "fraud_chance": "@X"}}, X=b"1e400"),
         422, "$.ipqs.fraud_chance", "Number out of range"),
    Case("NaN", splice({"visitorId": "@X"}, X=b"NaN"), 400, None, "malformed"),
    Case("invalid UTF-8", b'{"visitorId": "\xff"}', 400, None, "not valid UTF-8"),
    Case("100 KB visitorId", encode({"visitorId": "v" * 100_000}),
         422, "$.visitorId", "length <= 256"),
    Case("100 KB requestId", encode({"requestId": "r" * 100_000}),
         422, "$.requestId", "length <= 256"),
    # Alone, a requestId is only looked up: an unknown one is a 404, and no header carries it.
    Case("CRLF in the requestId", encode({"requestId": "s4\r\nSet-Cookie: stolen=1"}),
         404, "$.requestId", "unknown requestId"),
]  # fmt: skip


@pytest.fixture
async def client(app_with: Callable[..., Litestar]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = app_with(fingerprint_secret=Secret(SECRET), max_body_bytes=LIMIT)
    async with AsyncTestClient(app) as test_client:
        yield test_client


def assert_answer(response: httpx.Response, case: Case) -> None:
    assert response.status_code == case.status, (case.name, response.text[:300])
    assert_clean_headers(response)
    if case.status < 400:
        return
    error = response.json()["error"]
    assert error["status"] == case.status, case.name
    assert case.message in error["message"], (case.name, error)
    if case.field is not None and case.field.endswith("*"):
        assert error["field"].startswith(case.field[:-1]), (case.name, error)
    else:
        assert error.get("field") == case.field, (case.name, error)


def assert_clean_headers(response: httpx.Response) -> None:
    for name, value in response.headers.raw:
        assert b"\r" not in name + value and b"\n" not in name + value, (name, value)
    assert SANE_REQUEST_ID.match(response.headers["x-request-id"])


async def still_serving(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).status_code == 200
    body = encode(webhook("after-the-abuse"))
    response = await client.post(
        "/webhooks/fingerprint", content=body, headers=signed(body, SECRET)
    )
    assert response.status_code == 200, response.text


async def test_fingerprint_webhook_abuse(client: AsyncTestClient[Litestar]) -> None:
    for case in FINGERPRINT_CASES:
        assert len(case.body) <= LIMIT, case.name
        response = await client.post(
            "/webhooks/fingerprint", content=case.body, headers=signed(case.body, SECRET)
        )
        assert_answer(response, case)
    await still_serving(client)


async def test_ipqs_webhook_abuse(client: AsyncTestClient[Litestar]) -> None:
    for case in IPQS_CASES:
        response = await client.post("/webhooks/ipqs", content=case.body, headers=AUTH)
        assert_answer(response, case)
    await still_serving(client)


async def test_score_api_abuse(client: AsyncTestClient[Litestar]) -> None:
    for case in SCORE_CASES:
        response = await client.post("/v1/score", content=case.body, headers=AUTH)
        assert_answer(response, case)
    await still_serving(client)


def over_the_limit() -> tuple[bytes, bytes]:
    """A valid webhook padded to exactly the limit, and the same one byte longer."""
    unpadded = len(encode(webhook("limit", pad="")))
    exact = encode(webhook("limit", pad="x" * (LIMIT - unpadded)))
    over = encode(webhook("limit", pad="x" * (LIMIT + 1 - unpadded)))
    assert (len(exact), len(over)) == (LIMIT, LIMIT + 1)
    return exact, over


TOO_LARGE = Case("one byte over the limit", b"", 413, None, "exceeds the configured limit")


async def test_a_body_one_byte_over_the_limit_is_413(client: AsyncTestClient[Litestar]) -> None:
    exact, over = over_the_limit()
    response = await client.post(
        "/webhooks/fingerprint", content=exact, headers=signed(exact, SECRET)
    )
    assert response.status_code == 200, response.text
    for path, headers in [
        ("/webhooks/fingerprint", signed(over, SECRET)),
        ("/webhooks/ipqs", AUTH),
        ("/v1/score", AUTH),
    ]:
        response = await client.post(path, content=over, headers=headers)
        assert_answer(response, TOO_LARGE)
        # Without a content-length to refuse it by, the body is counted as it arrives.
        request = client.build_request("POST", path, content=over, headers=headers)
        del request.headers["content-length"]
        response = await client.send(request)
        assert_answer(response, TOO_LARGE)
    await still_serving(client)


def test_a_chunked_body_over_the_limit_is_413_on_a_real_server(redis_url: str, prefix: str) -> None:
    exact, over = over_the_limit()
    process, url = server.start(
        {
            "RISKWIRE_REDIS_URL": redis_url,
            "RISKWIRE_REDIS_PREFIX": prefix,
            "RISKWIRE_FINGERPRINT_SECRET": SECRET,
            "RISKWIRE_API_KEYS": "checkout-key",
            "RISKWIRE_MAX_BODY_BYTES": str(LIMIT),
            "RISKWIRE_HASH_KEY": "abuse-test",
            "RISKWIRE_FORWARDER_ENABLED": "false",
            "RISKWIRE_LOG_LEVEL": "WARNING",
        }
    )

    def chunked(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            for path, headers in [
                ("/webhooks/fingerprint", signed(over, SECRET)),
                ("/webhooks/ipqs", AUTH),
                ("/v1/score", AUTH),
            ]:
                response = http.post(path, content=chunked(over), headers=headers)
                assert response.request.headers["transfer-encoding"] == "chunked"
                assert_answer(response, TOO_LARGE)
            accepted = http.post(
                "/webhooks/fingerprint", content=chunked(exact), headers=signed(exact, SECRET)
            )
            assert accepted.status_code == 200, accepted.text
            assert http.get("/health").status_code == 200
    finally:
        server.stop(process)


async def test_request_id_headers_are_never_echoed_unsanitised(
    client: AsyncTestClient[Litestar],
) -> None:
    given: list[bytes] = [
        b"abc\r\nSet-Cookie: stolen=1",
        b"a" * 10_240,
        b"with spaces",
        b"\xe9t\xe9",
    ]
    for value in given:
        response = await client.get("/health", headers={b"x-request-id": value})
        assert response.status_code == 200
        assert_clean_headers(response)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])  # a fresh one
    kept = await client.get("/health", headers={"x-request-id": "checkout-42:a.b_c"})
    assert kept.headers["x-request-id"] == "checkout-42:a.b_c"
    await still_serving(client)
