"""``python -m service outbox stats|list|replay|purge``: look into and act on the outbox.

Parked (dead-letter) messages are the ones Segment refused on their own (400 for that one
message); they wait here, with the error, until someone replays them (after fixing what
Segment disliked, or because Segment's answer was wrong) or purges them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import msgspec

from service.keys import Keys
from service.outbox import Outbox
from service.settings import Settings


class ParkedMessage(msgspec.Struct, rename="camel", frozen=True):
    id: str
    error: str
    message_id: str | None
    type: str | None


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
    settings = Settings.from_env(os.environ)

    async def run() -> object:
        redis = connect_redis(settings, max_connections=2)
        try:
            outbox = Outbox(redis, Keys(settings.redis_prefix), settings.idempotency_ttl_s)
            if args.command == "stats":
                return await outbox.stats()
            if args.command == "list":
                return describe(await outbox.parked(count=args.count))
            ids = None if args.all else [i.encode() for i in args.id]
            if args.command == "replay":
                return {"replayed": await outbox.replay_parked(ids)}
            return {"purged": await outbox.purge_parked(ids)}
        finally:
            await redis.aclose(close_connection_pool=True)

    print(msgspec.json.format(msgspec.json.encode(asyncio.run(run())), indent=2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
