"""Webhook bodies built from the vendors' fixtures, with the Segment tag a test needs."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

# Byte-for-byte copies of the vendors' published payloads; provenance in each SOURCES.md.
FIXTURES = Path(__file__).resolve().parent / "fixtures"

V3_WEBHOOK: dict[str, Any] = json.loads((FIXTURES / "fingerprint/v3/webhook.json").read_bytes())
V4_WEBHOOK: dict[str, Any] = json.loads(
    (FIXTURES / "fingerprint/v4/webhook/webhook_event.json").read_bytes()
)

# The "Full Example" of Fingerprint's Segment integration documentation (seed 000).
FULL_EXAMPLE: dict[str, Any] = {
    "skipIntegration": False,
    "identify": {"userId": "your_internal_ID_123456", "traits": {"name": "Jon Doe"}},
    "page": {
        "category": "Account",
        "name": "Update Password",
        "properties": {"path": "/account/password", "referrer": "/account/home"},
        "context": {"trial": True},
    },
    "track": {"event": "Plan Updated", "properties": {"currency": "USD", "value": "19.99"}},
    "group": {
        "groupId": "0e8c78ea9d97a7b8185e8632",
        "traits": {"name": "Fingerprint", "industry": "Tech", "employees": 110},
    },
}


def v3(segment: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The v3 fixture; with ``segment``, its tag carries ``integrations.segment``."""
    body = copy.deepcopy(V3_WEBHOOK)
    if segment is not None:
        body["tag"] = {"requestType": "signup", "integrations": {"segment": segment}}
    body.update(overrides)
    return body


def v4(segment: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(V4_WEBHOOK)
    if segment is not None:
        body["tags"] = {"integrations": {"segment": segment}}
    body.update(overrides)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def clean_v3(
    request_id: str,
    visitor: str = "VisitorClean000000001",
    user: str | None = None,
    at: str = "2026-11-01T12:00:00Z",
    ip: str = "198.51.100.7",
    **overrides: Any,
) -> dict[str, Any]:
    """The v3 fixture turned into a clean, confident, returning visitor."""
    segment: dict[str, Any] = {"identify": {"userId": user}} if user else {}
    body = v3(segment, requestId=request_id, visitorId=visitor, time=at, ip=ip)
    body["bot"] = {"result": "notDetected"}
    body["proxy"] = {"result": False}
    body["locationSpoofing"] = {"result": False}
    body["ipInfo"]["v4"]["datacenter"] = {"result": False, "name": ""}
    body["confidence"] = {"score": 0.99}
    body["firstSeenAt"] = {"global": "2025-06-01T10:00:00Z", "subscription": "2025-06-01T10:00:00Z"}
    body.update(overrides)
    return body


def signed(body: bytes, secret: str) -> dict[str, str]:
    """Headers of a webhook delivery signed as Fingerprint signs it (``v1=`` HMAC-SHA256 of
    the body), written here from the documentation rather than through the service's code."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"fpjs-event-signature": f"v1={digest}", "content-type": "application/json"}
