"""Fingerprint's published test vector for ``fpjs-event-signature``."""

import pytest

from service.signature import is_valid_signature

DIGEST = "1b2c16b75bd2a870c114153ccda5bcfca63314bc722fa160d690de133ccbb9db"


def test_published_vector_is_valid() -> None:
    assert is_valid_signature(f"v1={DIGEST}", b"data", "secret")


@pytest.mark.parametrize(
    ("header", "body", "secret"),
    [
        (f"v2={DIGEST}", b"data", "secret"),  # only v1 is defined
        ("invalid", b"data", "secret"),
        ("", b"data", "secret"),
        (None, b"data", "secret"),
        (f"v1={DIGEST}", b"", "secret"),  # empty body with a (once) valid header
        (f"v1={DIGEST}", b"data", "other-secret"),
        (f"v1={DIGEST.upper()}", b"data", "secret"),  # the digest is lowercase hex
        (f"v1={DIGEST}", b"data ", "secret"),
    ],
)
def test_invalid_signatures(header: str | None, body: bytes, secret: str) -> None:
    assert not is_valid_signature(header, body, secret)


def test_any_v1_entry_of_a_list_may_match() -> None:
    header = f"v2=abc, v1={'0' * 64},v1={DIGEST}"
    assert is_valid_signature(header, b"data", "secret")
