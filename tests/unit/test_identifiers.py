"""Identifier hygiene (Segment's blocked values) and keyed hashing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from service.identifiers import IdentifierPolicy

policy = IdentifierPolicy(b"k" * 32, extra_blocked=["void", "ABC123"])


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "0",
        "000000",
        "0-0-0",
        "---",
        "-1",
        "null",
        "NULL",
        " anonymous ",
        "undefined",
        "void",
        "abc123",
        None,
    ],
)
def test_blocked_values_never_become_identifiers(value: str | None) -> None:
    assert policy.is_blocked(value)
    assert policy.user(value) is None
    assert policy.device("fp", value) is None
    assert policy.linked(value) is None
    assert policy.email(value) is None


@pytest.mark.parametrize("value", ["u-1", "10", "0a", "-2", "nullish", "anonymous2", "1-0-1"])
def test_ordinary_values_are_identifiers(value: str) -> None:
    assert not policy.is_blocked(value)
    assert policy.user(value) is not None


def test_hashes_are_keyed_short_namespaced_and_never_the_value() -> None:
    digest = policy.user("alice@example.com")
    assert digest is not None and len(digest) == 16
    assert "alice" not in digest
    assert policy.user("alice@example.com") == digest  # stable
    assert IdentifierPolicy(b"x" * 32).user("alice@example.com") != digest  # keyed
    assert policy.email("alice@example.com") != digest  # namespaced by kind
    assert policy.device("fp", "v1") != policy.device("ipqs", "v1")


def test_emails_and_ips_are_normalised() -> None:
    assert policy.email(" Alice@Example.com ") == policy.email("alice@example.com")
    assert policy.email("not-an-email") is None
    assert policy.ip("::ffff:0:0") == policy.ip("::ffff:0.0.0.0")
    assert policy.ip("2001:db8:0:0:0:0:0:1") == policy.ip("2001:db8::1")
    assert policy.ip("999.1.1.1") is None
    assert policy.ip(None) is None


async def test_a_lazily_loaded_key_is_fetched_once() -> None:
    calls = 0

    async def load() -> bytes:
        nonlocal calls
        calls += 1
        return b"z" * 32

    lazy = IdentifierPolicy(None, load_key=load)
    with pytest.raises(RuntimeError):
        lazy.user("u")
    await lazy.ready()
    await lazy.ready()
    assert calls == 1
    assert lazy.user("u") == IdentifierPolicy(b"z" * 32).user("u")


def test_digest_is_keyed_blake2b_of_kind_and_value_whatever_came_before() -> None:
    """The per-kind state the digest continues from never leaks one value into the next."""
    key = b"k" * 40
    policy = IdentifierPolicy(key)
    values = [
        ("user", "alice"),
        ("user", "bob"),
        ("ip", "1.2.3.4"),
        ("device:fp", "Vé"),
        ("user", ""),
    ]
    for kind, value in [*values, ("user", ""), *values]:
        mac = hashlib.blake2b(f"{kind}\x00{value}".encode(), key=key, digest_size=12)
        assert policy.digest(kind, value) == base64.urlsafe_b64encode(mac.digest()).decode()
