"""Templated RESP (``service.resp``) against hiredis's ``pack_command`` of the same command."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any

import pytest
from hiredis import pack_command
from redis.asyncio import Redis

from service.keys import Keys
from service.lua import Command, Sendable, pack
from service.ratelimit import WINDOW_MS, RateLimiter
from service.resp import SHORT, KeyedCall
from service.reuse import EntityRefs, ReuseStore

SHA = "2954355a65b0938af71dc8ffcb09945e50f9907e"
SUFFIXES = ("}:user", "}:email", "}:ip", "}:country", "}:linked", "}:event", "}:meta")
HASHED = string.ascii_letters + string.digits + "-_"
NOW = 1_796_337_799_404


def call(head: str = "rw:{d:", suffixes: Sequence[str] = SUFFIXES, width: int = 8) -> KeyedCall:
    return KeyedCall(("EVALSHA", SHA, len(suffixes)), head, suffixes, width)


def hiredis_bytes(command: Command) -> bytes:
    packed: bytes = pack_command(command)  # type: ignore[arg-type]
    return packed


def text(rng: random.Random, length: int, alphabet: str = HASHED) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def member(rng: random.Random) -> str | None:
    kind = rng.randrange(7)
    if kind == 0:
        return None
    if kind == 1:
        return ""
    if kind == 2:
        return text(rng, 2, string.ascii_uppercase)  # a country
    if kind == 3:
        return text(rng, rng.randrange(SHORT + 20), string.printable)  # past the joints too
    if kind == 4:
        return text(rng, rng.randrange(1, 6), "éß€😀\x00\r\n")  # UTF-8 longer than its length
    return text(rng, 16)


def last(rng: random.Random) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 300))  # binary: NUL, CR, LF, high bytes
    return text(rng, 40).encode()


@pytest.mark.parametrize("head", ["rwprof-f20eb3:{d:", "", "préfixe:{u:", "😀:{i:"])
def test_templated_bytes_equal_hiredis_for_random_calls(head: str) -> None:
    rng = random.Random(head)
    template = call(head)
    packed = 0
    for _ in range(3000):
        key_id = text(rng, rng.choice([16, 16, 16, 0, 1, 5, 22, 64]))
        if rng.random() < 0.05:
            key_id = text(rng, 16, HASHED + "ü")
        args: list[str | None] = [str(rng.choice([NOW, 0, -1, 10**20])), rng.choice("01")]
        args += [member(rng) for _ in range(6)]
        blob = last(rng)
        result = template.pack(key_id, args, blob)
        expected = hiredis_bytes(template.command(key_id, args, blob))
        assert pack([result]) == expected
        if isinstance(result, bytes):
            assert result == expected
            packed += 1
        else:
            # Only a value the template cannot measure goes the generic way.
            values = [key_id, *args]
            assert not all(v is None or (v.isascii() and len(v) < SHORT) for v in values)
            assert result == ("EVALSHA", SHA, 7, *result[3:])
    assert packed > 1000  # most calls took the template's way


def test_ids_of_another_length_build_their_own_template() -> None:
    template = call(suffixes=("}:only",), width=0)
    for key_id in ["", "a", "ab" * 10, "x" * (SHORT - 1), "y" * SHORT]:
        result = template.pack(key_id, [], b"\x00\r\n")
        assert pack([result]) == hiredis_bytes(
            ("EVALSHA", SHA, 1, f"rw:{{d:{key_id}}}:only", b"\x00\r\n")
        )
        # An id too long for the joints goes the generic way.
        assert isinstance(result, bytes) == (len(key_id) < SHORT)


@pytest.mark.parametrize(
    ("key_id", "args", "blob"),
    [
        pytest.param("a" * 16, ["1", "0", b"bytes", "", "", "", "", ""], b"", id="bytes-member"),
        pytest.param("a" * 16, ["1", "0", 7, "", "", "", "", ""], b"", id="int-member"),
        pytest.param("a" * 16, ["1", "0", "", "", "", "", ""], b"", id="too-few"),
        pytest.param("a" * 16, ["1", "0", "", "", "", "", "", "", ""], b"", id="too-many"),
        pytest.param("a" * 16, ["1"] * 8, "text", id="text-last"),
        pytest.param("a" * 16, ["1"] * 8, bytearray(b"x"), id="bytearray-last"),
        pytest.param(b"a" * 16, ["1"] * 8, b"", id="bytes-id"),
        pytest.param(16, ["1"] * 8, b"", id="int-id"),
        pytest.param("a" * 16, ["1", "\ud800", *[""] * 6], b"", id="lone-surrogate"),
    ],
)
def test_values_of_unexpected_types_go_the_generic_way(key_id: Any, args: Any, blob: Any) -> None:
    template = call()
    template.pack("b" * 16, ["1"] * 8, b"")  # the template for 16 exists already

    def generic() -> bytes:
        return hiredis_bytes(template.command(key_id, args, blob))

    def templated() -> bytes:
        result = template.pack(key_id, args, blob)
        assert isinstance(result, tuple)
        return pack([result])

    try:
        expected = generic()
    except Exception as exc:  # refused the generic way: refused alike, never sent
        with pytest.raises(type(exc)):
            templated()
    else:
        assert templated() == expected


class Recorder:
    """A link that keeps every batch and answers each script call with empty counts."""

    def __init__(self) -> None:
        self.batches: list[list[Sendable]] = []

    async def round_trip(self, commands: Sequence[Sendable]) -> list[Any]:
        self.batches.append(list(commands))
        return [[0] * 40 + [-1, None] for _ in commands]


async def test_the_reuse_batch_is_the_commands_it_was_before() -> None:
    """The templated script calls equal the tuples ``ReuseStore`` used to build."""
    keys = Keys("rwprof-f20eb3")
    link = Recorder()
    store = ReuseStore(Redis(), keys, windows_ms=(1, 2, 3), cap=5, ipqs_window_ms=1, link=link)
    d, u, i, e = "BN2VBXzEZUcaacA2", "V4DqD_5mfIjm6NGV", "3VrufCiP95w1hskc", "bSQK7dv6N1CLQm-m"
    c, li = "CZ", "knfg4fOFwkmOBhAx"
    refs = EntityRefs(device=d, user=u, ip=i, country=c, linked=li, event=e)
    await store.observe_with(refs, NOW, ipqs_blob=b"\x81\xa1x\x00", also=[("INCR", "n")])
    [batch] = link.batches
    assert all(isinstance(command, bytes) for command in batch[:3])
    assert batch[3] == ("INCR", "n")
    scripts = [script.sha for script in store._scripts]

    def keys_of(entity: str, entity_id: str, names: Sequence[str]) -> list[str]:
        return [keys.entity(entity, entity_id, name) for name in [*names, "meta"]]

    expected: list[Command] = [
        ("EVALSHA", scripts[0], 7,
         *keys_of("device", d, ["user", "email", "ip", "country", "linked", "event"]),
         NOW, "1", u, "", i, c, li, e, b""),
        ("EVALSHA", scripts[1], 4, *keys_of("user", u, ["fp-device", "ip", "event"]),
         NOW, "1", d, i, e, b"\x81\xa1x\x00"),
        ("EVALSHA", scripts[2], 4, *keys_of("ip", i, ["fp-device", "user", "event"]),
         NOW, "1", d, u, e, b""),
        ("INCR", "n"),
    ]  # fmt: skip
    assert pack(batch) == b"".join(hiredis_bytes(command) for command in expected)


def test_rate_limit_commands_are_packed_once_a_window() -> None:
    limiter = RateLimiter(Keys("rw"), per_minute=10)
    now = 29_938_963 * WINDOW_MS + 5
    first = limiter.commands("0bdfab5eee89942802", now)
    key = "rw:{rl:0bdfab5eee89942802}:29938963"
    expected = [("SET", key, 0, "PX", 120_000, "NX"), ("INCR", key)]
    assert pack(first) == b"".join(hiredis_bytes(command) for command in expected)
    assert limiter.commands("0bdfab5eee89942802", now + 1000) is first
    later = limiter.commands("0bdfab5eee89942802", now + WINDOW_MS)
    assert b":29938964\r\n" in pack(later)
    assert b"{rl:other}" in pack(limiter.commands("other", now))
