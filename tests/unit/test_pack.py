"""RESP packing of command batches (``service.lua.pack``) against RESP written out by hand."""

from __future__ import annotations

from service.lua import Command, pack


def test_pack_writes_resp_arrays_of_bulk_strings() -> None:
    commands: list[Command] = [
        ("EVALSHA", "ab12", 2, "k:{d:1}:user", "k:{d:1}:meta", 1_790_000_000_000, "1", b""),
        ("SET", "clé", b"\x00\r\n", "EX", -1),
    ]
    expected = (
        b"*8\r\n$7\r\nEVALSHA\r\n$4\r\nab12\r\n$1\r\n2\r\n$12\r\nk:{d:1}:user\r\n"
        b"$12\r\nk:{d:1}:meta\r\n$13\r\n1790000000000\r\n$1\r\n1\r\n$0\r\n\r\n"
        # UTF-8 lengths are byte counts; binary values pass through untouched.
        b"*5\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$3\r\n\x00\r\n\r\n$2\r\nEX\r\n$2\r\n-1\r\n"
    )
    assert pack(commands) == expected
    assert pack([]) == b""
