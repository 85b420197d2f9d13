"""One page load that runs Fingerprint's agent (and maybe IPQS's tracker): the ground truth.

A ``Visit`` records what really happened — who, on which device, from which IP, with what
browser state — and is only turned into vendor JSON later (``wire.py``), so the two formats
and the IPQS result are always views of one event and never disagree.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from service.simulation.devices import Device
from service.simulation.geo import City, Ip

Label = Literal["fraud", "legit"]
Format = Literal["v3", "v4"]
BotResult = Literal["notDetected", "good", "bad"]

SITE = "https://shop.example.com"

_IPQS_FAILURES = (
    "Device fingerprint could not be completed: the tracking script was blocked.",
    "Device fingerprint timed out before the browser returned its profile.",
    "Invalid or incomplete device fingerprint payload.",
)


@dataclass(slots=True, eq=False)
class Account:
    """A shop account. ``user_id`` None = created during the simulation, numbered when first
    seen so ids grow with sign-up time, as a database sequence would hand them out."""

    email: str
    user_id: str | None = None


@dataclass(slots=True)
class Signals:
    """Browser-side smart signals of one visit (IP-side ones live on ``Ip``)."""

    bot: BotResult = "notDetected"
    bot_type: str | None = None
    tampering: bool = False
    anomaly_score: float = 0.0
    anti_detect: bool = False
    virtual_machine: bool = False
    privacy_settings: bool = False
    location_spoofing: bool = False
    developer_tools: bool = False
    os_mismatch: bool = False
    auxiliary_mobile: bool = False


@dataclass(slots=True)
class IpqsOutcome:
    """What IPQS's tracker reports for the same page load (its own, independent opinion)."""

    request_id: str
    time_ms: int  # whole seconds: IPQS reports unix seconds
    success: bool
    message: str | None
    fraud_chance: int
    guid_confidence: int
    recent_abuse: bool
    bot_status: bool
    proxy: bool
    vpn: bool
    tor: bool
    with_email: bool


@dataclass(slots=True, eq=False)
class Visit:
    time_ms: int
    population: str
    label: Label
    device: Device
    account: Account
    ip: Ip
    tz_city: City  # the time zone the browser reports (anti-detect browsers fake it)
    event: str  # the Segment track event the page sends
    path: str
    referrer: str
    incognito: bool
    confidence: float
    previous_seen_ms: int | None  # None: Fingerprint had never seen this visitor
    signals: Signals
    format: Format
    request_id: str
    ipqs: IpqsOutcome | None
    email_trait: bool = False
    extra: Mapping[str, str] | None = None  # track properties (coupon, ...)

    @property
    def url(self) -> str:
        return SITE + self.path

    @property
    def linked(self) -> bool:
        # The shop passes linkedId only where an order is involved (its own choice).
        return self.event in ("Checkout Started", "Order Completed", "Payment Info Entered")


def _clip(value: float) -> int:
    return max(0, min(100, round(value)))


def draw_ipqs(
    rng: random.Random,
    request_id: str,
    time_ms: int,
    ip: Ip,
    signals: Signals,
    incognito: bool,
    risk: float,
) -> IpqsOutcome:
    """IPQS's view of a visit; ``risk`` (0-1) is how fraud-like IPQS's network finds it.

    fraud_chance: legitimate visitors centre on IPQS's documented median of 25 (mostly 0-40);
    fraudulent ones skew high (median ~70) but overlap; IP and bot evidence add to both.

    IPQS's opinion is its own, not Fingerprint's: it finds most residential-proxy exits
    (``ip.proxy_pool``) whether or not Fingerprint flags them, and an address shared with
    strangers (a carrier's NAT above all) sometimes carries someone else's abuse, so a
    legitimate visitor gets a moderate fraud_chance, now and then with recent_abuse.
    """
    # Results arrive shortly after the page load, time-stamped to the second.
    second = (time_ms + rng.randint(300, 4000) + 999) // 1000 * 1000
    bad_bot = signals.bot == "bad"
    failure = 0.012 + 0.06 * risk + (0.08 if bad_bot else 0.0)
    if signals.privacy_settings:
        failure += 0.03  # strict browsers break the tracker more often
    if rng.random() < failure:
        return IpqsOutcome(
            request_id, second, False, rng.choice(_IPQS_FAILURES), 0, 0, False, False, False,
            False, False, False,
        )  # fmt: skip
    if rng.random() < 0.25:
        # IPQS's network has no history on this device yet: fraud it cannot tell apart.
        risk *= 0.3
    # The address, judged by IPQS's own honeypots and abuse reports.
    pool_seen = ip.proxy_pool and rng.random() < 0.7
    if pool_seen:
        risk = max(risk, rng.uniform(0.6, 0.9))
    elif rng.random() < (0.08 if ip.network.kind == "mobile" else 0.03):
        risk = max(risk, rng.uniform(0.3, 0.6))  # someone else's abuse on a shared address
    legit_draw = rng.gammavariate(3.6, 7.2)  # median ~24
    fraud_draw = 100 * rng.betavariate(4.5, 2.0)  # median ~71
    chance = (1 - risk) * legit_draw + risk * fraud_draw
    vpn = (ip.public_vpn and rng.random() < 0.92) or (ip.relay and rng.random() < 0.5)
    tor = ip.tor and rng.random() < 0.97
    proxy = vpn or tor or pool_seen
    if not proxy and ip.datacenter and rng.random() < 0.3:
        proxy = True
    chance += 10 * vpn + 12 * (proxy and not vpn) + 18 * tor + 6 * incognito + 15 * bad_bot
    # Verified abuse across IPQS's network is part of what its fraud score says.
    recent_abuse = rng.random() < 0.01 + 0.55 * risk * risk
    chance += 20 * recent_abuse
    bot_status = rng.random() < (
        0.85 if bad_bot else 0.35 if signals.anti_detect or signals.virtual_machine else 0.008
    )
    if bad_bot or signals.anti_detect:
        guid_confidence = rng.randint(15, 70)
    elif signals.privacy_settings or incognito:
        guid_confidence = rng.randint(62, 96)
    else:
        guid_confidence = rng.randint(84, 100)
    return IpqsOutcome(
        request_id=request_id,
        time_ms=second,
        success=True,
        message=None,
        fraud_chance=_clip(chance),
        guid_confidence=guid_confidence,
        recent_abuse=recent_abuse,
        bot_status=bot_status,
        proxy=proxy,
        vpn=vpn,
        tor=tor,
        with_email=rng.random() < 0.5,
    )
