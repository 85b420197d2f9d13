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


def test_remembered_hashes_are_the_hashes_and_the_memo_stays_bounded() -> None:
    """The memo answers what hygiene plus hashing answer, blocked values included, for every
    kind, whether the value is seen the first time or again; it never outgrows its bound."""
    bounded = IdentifierPolicy(b"k" * 32, extra_blocked=["void"], memo_entries=8)
    fresh = IdentifierPolicy(b"k" * 32, extra_blocked=["void"], memo_entries=0)
    values = [
        "user-1", " user-1 ", "void", "null", "", "Ann@Example.COM", " ann@example.com",
        "no-at-sign", "10.0.0.1", "::ffff:10.0.0.1", "not an ip", "2001:DB8::1",
    ]  # fmt: skip
    for _ in range(3):  # first sight, then remembered (or dropped and recomputed)
        for value in values:
            assert bounded.user(value) == fresh.user(value) == policy_hash(fresh, "user", value)
            assert bounded.email(value) == fresh.email(value)
            assert bounded.ip(value) == fresh.ip(value)
            assert bounded.device("fp", value) == fresh.device("fp", value)
            assert bounded.device("ipqs", value) == fresh.device("ipqs", value)
            assert bounded.device("fp", value) != bounded.device("ipqs", value) or (
                bounded.device("fp", value) is None
            )
            assert bounded.linked(value) == fresh.linked(value)
            assert len(bounded._memo) <= 8
    assert bounded.email("Ann@Example.COM") == bounded.email("ann@example.com") is not None
    assert bounded.ip("::ffff:10.0.0.1") != bounded.ip("10.0.0.1")


def test_request_ids_are_not_remembered() -> None:
    remembering = IdentifierPolicy(b"k" * 32)
    for n in range(100):
        remembering.request("fp", f"req-{n}")
    assert remembering._memo == {}


def policy_hash(policy: IdentifierPolicy, kind: str, value: str) -> str | None:
    cleaned = policy.clean(value)
    return None if cleaned is None else policy.digest(kind, cleaned)
