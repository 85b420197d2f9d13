"""Redis facts for the report, the per-request command count, and cleaning up after a run."""

from __future__ import annotations

import re
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis

# A MONITOR line: +<time> [<db> <client>] "<command>" "<arg>" ...
_MONITOR_LINE = re.compile(
    rb'^\+[\d.]+ \[\d+ ([^\]]*)\] "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?'
)
# Commands whose second word says what they do.
_CONTAINER_COMMANDS = {"SCRIPT", "CLIENT", "CONFIG", "XGROUP", "XINFO"}


def redis_version(client: redis.Redis) -> str:
    info: dict[str, Any] = client.info("server")
    return str(info.get("redis_version", "unknown"))


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """DEL every key under ``prefix:``; returns how many there were."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


@dataclass(frozen=True)
class CommandCount:
    requests: int
    by_command: dict[str, int]

    @property
    def per_request(self) -> float:
        return sum(self.by_command.values()) / self.requests

    def breakdown(self) -> str:
        return ", ".join(
            f"{name} {count / self.requests:g}"
            for name, count in sorted(self.by_command.items(), key=lambda item: -item[1])
        )


def _resp(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded
    )


def _open_monitor(url: str, timeout_s: float) -> socket.socket | None:
    """A socket in MONITOR mode, or None for a URL this plain-TCP reader cannot serve."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        return None
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    sock.settimeout(timeout_s)
    reader = sock.makefile("rb")
    if parts.password:
        user = [unquote(parts.username)] if parts.username else []
        sock.sendall(_resp("AUTH", *user, unquote(parts.password)))
        if not reader.readline().startswith(b"+OK"):
            sock.close()
            return None
    sock.sendall(_resp("MONITOR"))
    if not reader.readline().startswith(b"+OK"):
        sock.close()
        return None
    return sock


def count_commands(
    client: redis.Redis,
    url: str,
    prefix: str,
    requests: int,
    send: Callable[[], None],
    *,
    timeout_s: float = 10.0,
) -> CommandCount | None:
    """Commands the service sends Redis while ``send`` makes ``requests`` requests.

    MONITOR rather than INFO counters, because other clients (tests run by someone else)
    may share this Redis: a connection counts as the service's once it touches a key under
    ``prefix``, and the forwarder's connection (the one polling with XREADGROUP) is left
    out, as its polls do not depend on the requests. Commands Lua scripts run inside Redis
    are not round trips and are not counted.
    """
    sock = _open_monitor(url, timeout_s)
    if sock is None:
        return None
    sentinel = f"bench-monitor-end-{secrets.token_hex(8)}"
    try:
        send()
        client.echo(sentinel)
        reader = sock.makefile("rb")
        marker = prefix.encode() + b":"
        seen: list[tuple[bytes, str, bool]] = []
        while True:
            line = reader.readline()
            if not line:
                return None
            if sentinel.encode() in line:
                break
            match = _MONITOR_LINE.match(line)
            if match is None or match.group(1) == b"lua":
                continue
            name = match.group(2).decode(errors="replace").upper()
            if name in _CONTAINER_COMMANDS and match.group(3):
                name += " " + match.group(3).decode(errors="replace").upper()
            seen.append((match.group(1), name, marker in line))
    except OSError:
        return None
    finally:
        sock.close()
    service = {who for who, _, ours in seen if ours}
    forwarder = {who for who, name, _ in seen if name == "XREADGROUP"}
    counted = Counter(name for who, name, _ in seen if who in service - forwarder)
    return CommandCount(requests, dict(counted))
