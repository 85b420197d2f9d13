"""RESP written from templates, for the commands every score request sends.

hiredis's ``pack_command`` formats every argument of every command it packs (a copy and a
``sprintf`` each), about as costly per argument as a Python loop would be: a reuse script
call of 20 arguments takes ~1.5 us. Most of those arguments never change between requests
(the command, the script's sha, the key count, the key names around the entity id, their
lengths), so a template writes them once, and a call joins only the variable parts in, with
one ``str.join`` and one ``encode``.

Lengths in RESP are byte counts and a template measures text in characters, which agree only
for ASCII: a call whose values are not all ASCII text (or are of another type, or longer than
the length table) is answered with the ``Command`` tuple instead, for hiredis to pack. Either
way the bytes sent are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from hiredis import pack_command

from service.lua import Command, Packed, Sendable

# Text values up to this length take the template's way; their length prefixes are written
# ahead, as the joints below.
SHORT = 256
# The end of one argument and the head of the next one, of length n: "\r\n$<n>\r\n".
_JOINTS = tuple(f"\r\n${n}\r\n" for n in range(SHORT))
_EMPTY_LAST = b"\r\n$0\r\n\r\n"


def _bulk(value: str | int) -> str:
    text = str(value)
    return f"${len(text.encode())}\r\n{text}\r\n"


class KeyedCall:
    """One command shape: constant leading arguments, then keys that each embed one id
    (``head + id + suffix``), then ``width`` text arguments and one bytes argument last.

    ``pack(id, args, last)`` is ``Packed`` RESP equal to hiredis's for ``command(id, args,
    last)``, or that tuple itself when the values do not fit the template. A None text
    argument is sent as an empty string.
    """

    def __init__(
        self, lead: Sequence[str | int], head: str, suffixes: Sequence[str], width: int
    ) -> None:
        if not suffixes:
            raise ValueError("a keyed call needs at least one key")
        self._lead = tuple(lead)
        self._head = head
        self._suffixes = tuple(suffixes)
        self._width = width
        # Per id length: the constant text around the ids (joined by the id), and by how many
        # bytes its UTF-8 exceeds its length (a prefix need not be ASCII).
        self._pieces: dict[int, tuple[tuple[str, ...], int]] = {}

    def command(self, key_id: str, args: Sequence[str | None], last: bytes) -> Command:
        return (
            *self._lead,
            *[self._head + key_id + suffix for suffix in self._suffixes],
            *["" if arg is None else arg for arg in args],
            last,
        )

    def pack(self, key_id: str, args: Sequence[str | None], last: bytes) -> Sendable:
        # Each check below falls back rather than raise: an odd value gets hiredis's answer
        # (or its error), never RESP of the wrong length.
        try:
            pieces, extra = self._pieces[len(key_id)]
        except (KeyError, TypeError):
            if type(key_id) is not str or len(key_id) >= SHORT:
                return self.command(key_id, args, last)
            pieces, extra = self._pieces[len(key_id)] = self._build(len(key_id))
        if len(args) != self._width or type(last) is not bytes:
            return self.command(key_id, args, last)
        try:
            parts = [key_id.join(pieces)]
            for arg in args:
                if arg is None:
                    arg = ""
                parts += (_JOINTS[len(arg)], arg)
            text = "".join(parts)  # TypeError for anything but text
            data = text.encode()
        except (IndexError, TypeError, UnicodeEncodeError):
            return self.command(key_id, args, last)
        # UTF-8 is one byte a character exactly when every character is ASCII.
        if len(data) != len(text) + extra:
            return self.command(key_id, args, last)
        if not last:
            return Packed(data + _EMPTY_LAST)
        return Packed(b"%b\r\n$%d\r\n%b\r\n" % (data, len(last), last))

    def _build(self, id_length: int) -> tuple[tuple[str, ...], int]:
        head, suffixes = self._head, self._suffixes

        def key_head(suffix: str) -> str:
            size = len(head.encode()) + id_length + len(suffix.encode())
            return f"${size}\r\n{head}"

        count = len(self._lead) + len(suffixes) + self._width + 1
        opening = f"*{count}\r\n" + "".join(_bulk(arg) for arg in self._lead)
        pieces = (
            opening + key_head(suffixes[0]),
            *[f"{suffix}\r\n{key_head(following)}" for suffix, following in pairwise(suffixes)],
            suffixes[-1],
        )
        extra = sum(len(piece.encode()) - len(piece) for piece in pieces)
        return pieces, extra


def packed(command: Command) -> Packed:
    """``command`` packed once, to be sent many times."""
    return Packed(pack_command(command))  # type: ignore[arg-type]
