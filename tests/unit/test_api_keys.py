"""API-key checks on the raw header bytes answer as the decode-strip-encode reading did."""

from __future__ import annotations

import hmac
from itertools import product

import pytest

from service.auth import ApiKeys
from service.errors import Unauthorized
from service.ratelimit import key_id
from service.settings import Secret

KEYS = ("checkout-key", "other-käy")


def reference(header: bytes | None, keys: tuple[str, ...]) -> bytes | None:
    """The check as first written, on ``str``: the presented key, or None for a 401."""
    scheme, _sep, token = (header or b"").decode("latin-1").partition(" ")
    presented = token.strip().encode("latin-1")
    matched = any(hmac.compare_digest(presented, key.encode()) for key in keys)
    return presented if scheme.lower() == "bearer" and presented and matched else None


def scope(header: bytes | None) -> dict[str, object]:
    return {"type": "http", "headers": [] if header is None else [(b"authorization", header)]}


def answer(keys: ApiKeys, header: bytes | None) -> bytes | None:
    try:
        return keys.verify(scope(header))  # type: ignore[arg-type]
    except Unauthorized:
        return None


# Every character str.strip() removes from latin-1 (\x1c-\x1f, \x85 and \xa0 among them),
# the separators and cases around the scheme, non-ASCII keys sent as their UTF-8 bytes.
PADDING = [b"", b" ", b"\t", b"\x1c", b"\x1f", b"\x85", b"\xa0", b"\x0b\x0c\r\n", b"\x00"]
SCHEMES = [b"Bearer", b"bearer", b"BEARER", b"BeArEr", b"Basic", b"Bearer\xa0", b"\xc0earer", b""]
TOKENS = [b"checkout-key", "other-käy".encode(), "other-käy".encode("latin-1"), b"", b"nope"]
HEADERS = [
    scheme + sep + left + token + right
    for scheme, sep, left, token, right in product(
        SCHEMES, [b" ", b"\t", b""], PADDING, TOKENS, PADDING
    )
]


def test_raw_header_reading_matches_the_decoded_one() -> None:
    keys = ApiKeys([Secret(key) for key in KEYS])
    accepted = 0
    for header in [None, *HEADERS]:
        expected = reference(header, KEYS)
        assert answer(keys, header) == expected, header
        accepted += expected is not None
    assert accepted > 100  # the cases exercise acceptance, not only refusals


def test_key_ids_are_the_matched_keys_hashes() -> None:
    keys = ApiKeys([Secret(key) for key in KEYS])
    for key in KEYS:
        header = b"Bearer \xa0" + key.encode() + b" "
        assert keys.key_id(scope(header)) == key_id(key)  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        keys.key_id(scope(b"Bearer checkout-keyx"))  # type: ignore[arg-type]


def test_no_keys_let_nothing_in() -> None:
    keys = ApiKeys([])
    assert not keys
    for header in (b"Bearer ", b"Bearer x", None):
        assert answer(keys, header) is None
