"""Fingerprint's ``fpjs-event-signature`` header: ``v1=<hex>[,v2=<hex>...]``.

``v1`` is the lowercase hex HMAC-SHA256 of the raw body keyed with the webhook secret.
Other versions are ignored (a future version must not be accepted by accident).
"""

from __future__ import annotations

import hmac

HEADER = "fpjs-event-signature"


def is_valid_signature(header: str | None, body: bytes, secret: str) -> bool:
    if not header or not body:
        return False
    # The one-shot C digest: an ``hmac.new`` object costs more than hashing the body.
    expected = hmac.digest(secret.encode(), body, "sha256").hex().encode()
    valid = False
    for entry in header.split(","):
        version, sep, digest = entry.strip().partition("=")
        if sep and version == "v1":
            # Compare every v1 entry so timing does not reveal which one matched.
            valid |= hmac.compare_digest(digest.encode(), expected)
    return valid
