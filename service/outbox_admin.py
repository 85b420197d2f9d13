"""Look into and act on the outbox: ``python -m service outbox stats|list|replay|purge``, and
the shapes the admin HTTP routes (``service/routes/admin.py``) answer with.

Parked (dead-letter) messages are the ones Segment refused on their own (400 for that one
message); they wait here, with the error, until someone replays them (after fixing what
Segment disliked, or because Segment's answer was wrong) or purges them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from typing import Annotated

import msgspec

from service.decode import decode_with
from service.errors import InvalidPayload, MalformedBody
from service.keys import Keys
from service.outbox import Outbox
from service.settings import Settings

# Per call, so one request can neither return nor touch an unbounded number of entries.
MAX_LISTED = 1000
MAX_SELECTED = 1000

_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_STREAM_ID_PART_MAX = 2**64 - 1
StreamId = Annotated[
    str,
    msgspec.Meta(
        max_length=41,
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="a parked entry id as listed, `<milliseconds>-<sequence>`",
    ),
]


def stream_id(text: str) -> bytes | None:
    """``text`` as a Redis stream entry id, or None: Redis refuses anything else with an
    error that would otherwise surface as a 503."""
    match = _STREAM_ID.fullmatch(text)
    if match is None or any(int(part) > _STREAM_ID_PART_MAX for part in match.groups()):
        return None
    return text.encode()


class ParkedMessage(msgspec.Struct, rename="camel", frozen=True):
    id: str
    error: str
    message_id: str | None
    type: str | None


class ParkedSelection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which parked messages: ``ids`` (entry ids as listed) or ``all: true`` — exactly one."""

    ids: Annotated[list[StreamId], msgspec.Meta(min_length=1, max_length=MAX_SELECTED)] | None = (
        None
    )
    all: bool | None = None


class Replayed(msgspec.Struct, frozen=True):
    replayed: int  # put back in the outbox; ids that were not parked are not counted


class Purged(msgspec.Struct, frozen=True):
    purged: int


_selection_decoder = msgspec.json.Decoder(ParkedSelection)


def selected_ids(body: bytes) -> list[bytes] | None:
    """The entry ids a replay / purge body names, or None for all of them."""
    if not body:
        raise MalformedBody("body is empty")
    selection = decode_with(_selection_decoder, body)
    if selection.ids is None and selection.all is None:
        raise InvalidPayload(
            "give exactly one of `ids` (parked entry ids) and `all: true`", field="$.ids"
        )
    if selection.ids is not None and selection.all is not None:
        raise InvalidPayload("`ids` and `all` exclude each other: give exactly one", field="$.all")
    if selection.ids is None:
        if not selection.all:
            raise InvalidPayload("`all` must be true (or give `ids` instead)", field="$.all")
        return None
    ids: list[bytes] = []
    for n, text in enumerate(selection.ids):
        parsed = stream_id(text)
        if parsed is None:
            raise InvalidPayload(
                "not a Redis stream entry id (`<milliseconds>-<sequence>`, each below 2^64)",
                field=f"$.ids[{n}]",
            )
        ids.append(parsed)
    return ids


def describe(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[ParkedMessage]:
    described = []
    for entry_id, fields in entries:
        try:
            message = msgspec.json.decode(fields.get(b"m", b"{}"))
        except msgspec.DecodeError:
            message = {}
        described.append(
            ParkedMessage(
                id=entry_id.decode(),
                error=fields.get(b"error", b"").decode(errors="replace"),
                message_id=message.get("messageId") if isinstance(message, dict) else None,
                type=message.get("type") if isinstance(message, dict) else None,
            )
        )
    return described


def main(argv: Sequence[str] | None = None) -> int:
    from service.app import connect_redis

    parser = argparse.ArgumentParser(prog="python -m service outbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="outbox length, in flight, parked")
    listing = commands.add_parser("list", help="parked messages with their errors")
    listing.add_argument("--count", type=int, default=100)
    for name in ("replay", "purge"):
        sub = commands.add_parser(name, help=f"{name} parked messages")
        which = sub.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", action="append", help="a parked entry id (repeatable)")
        which.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    ids: list[bytes] | None = None
    if args.command in ("replay", "purge") and not args.all:
        ids = []
        for text in args.id:
            parsed = stream_id(text)
            if parsed is None:
                parser.error(f"--id {text!r} is not a stream entry id (<milliseconds>-<sequence>)")
            ids.append(parsed)
    settings = Settings.from_env(os.environ)

    async def run() -> object:
        redis = connect_redis(settings, max_connections=2)
        try:
            outbox = Outbox(redis, Keys(settings.redis_prefix), settings.idempotency_ttl_s)
            if args.command == "stats":
                return await outbox.stats()
            if args.command == "list":
                return describe(await outbox.parked(count=args.count))
            if args.command == "replay":
                return Replayed(await outbox.replay_parked(ids))
            return Purged(await outbox.purge_parked(ids))
        finally:
            await redis.aclose(close_connection_pool=True)

    print(msgspec.json.format(msgspec.json.encode(asyncio.run(run())), indent=2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
