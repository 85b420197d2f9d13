"""Request bodies for the load runs, built ahead of time so wrk only replays bytes.

Each body is one line of a pool file: ``<signature>\\t<json>``, the signature empty when the
route needs none. JSON from msgspec is compact and escapes newlines, so a body never spans
lines.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "fingerprint" / "v3" / "webhook.json"

API_KEY = "bench-key"
WEBHOOK_SECRET = "bench-secret"
SIGNATURE_HEADER = "fpjs-event-signature"

# Independent draws from pools of these sizes keep every reuse set growing through the run
# (a visitor meets new users and IPs, an IP new visitors) without growing without bound.
VISITORS = 2000
USERS = 1500
IPS = 1000

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Identity:
    visitor_id: str
    user_index: int
    ip: str


class Identities:
    """A deterministic stream of (visitor, user, IP) triples drawn from fixed pools."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self._rng = rng
        self._visitors = [f"BenchVisitor{n:08d}" for n in range(VISITORS)]
        self._ips = [
            f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
            f"{rng.randint(1, 254)}"
            for _ in range(IPS)
        ]

    def draw(self) -> Identity:
        rng = self._rng
        return Identity(rng.choice(self._visitors), rng.randrange(USERS), rng.choice(self._ips))


def load_fixture() -> dict[str, Any]:
    event: dict[str, Any] = msgspec.json.decode(FIXTURE.read_bytes())
    return event


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BodyFactory:
    """Score and webhook bodies around the v3 fixture, each with a request id never used before.

    Request ids carry a per-process tag so a second run against the same Redis (or a stale
    prefix) cannot turn fresh webhooks into replays.
    """

    def __init__(self, seed: int, tag: str) -> None:
        self._fixture = load_fixture()
        self._identities = Identities(seed)
        self._tag = tag
        self._serial = 0
        now = datetime.now(UTC)
        # Events as Fingerprint sends them: moments ago, not in 2019 as in the fixture, so
        # the reuse windows (anchored at the event time for webhooks) cover "now".
        self._time = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._timestamp = int(now.timestamp() * 1000)

    def _event(self, who: Identity) -> dict[str, Any]:
        self._serial += 1
        event = dict(self._fixture)
        event["requestId"] = f"{self._timestamp}.{self._tag}{self._serial:07d}"
        event["visitorId"] = who.visitor_id
        event["ip"] = who.ip
        event["time"] = self._time
        event["timestamp"] = self._timestamp
        return event

    def score_body(self) -> bytes:
        who = self._identities.draw()
        # No top-level requestId: with an inline event it must match the event's or be absent.
        return _encoder.encode(
            {
                "visitorId": who.visitor_id,
                "userId": f"u-{who.user_index}",
                "ip": who.ip,
                "event": self._event(who),
            }
        )

    def webhook_body(self) -> bytes:
        who = self._identities.draw()
        event = self._event(who)
        event["tag"] = {
            "integrations": {
                "segment": {
                    "identify": {"userId": f"u-{who.user_index}"},
                    "track": {"event": "Checkout"},
                }
            }
        }
        return _encoder.encode(event)

    def score_bodies(self, count: int) -> Iterator[tuple[str, bytes]]:
        for _ in range(count):
            yield "", self.score_body()

    def webhook_bodies(self, count: int) -> Iterator[tuple[str, bytes]]:
        for _ in range(count):
            body = self.webhook_body()
            yield sign(body), body


def write_pool(path: Path, entries: Iterator[tuple[str, bytes]]) -> int:
    """Write ``<signature>\\t<body>`` lines; returns how many."""
    count = 0
    with path.open("wb") as out:
        for signature, body in entries:
            out.write(signature.encode() + b"\t" + body + b"\n")
            count += 1
    return count
