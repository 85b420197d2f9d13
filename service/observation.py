"""``Observation``: the one internal shape every source is normalised into.

Everything after decoding (reuse signals, features, the model, Segment specs) reads an
Observation and nothing else, so adding a source means adding one decoder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from service.segment_tag import SegmentTag

# "api": a visitor scored by id alone through the score API, with no event behind it.
Source = Literal["fingerprint_v3", "fingerprint_v4", "ipqs", "api"]


class BrowserDetails(msgspec.Struct, rename="camel", frozen=True, omit_defaults=True):
    """Browser, OS and device, in the camelCase shape Segment's page context carries."""

    browser_name: str | None = None
    browser_major_version: str | None = None
    browser_full_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    user_agent: str | None = None


class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """Risk signals as the device-intelligence vendor reported them; None = not reported."""

    bot: bool | None = None
    vpn: bool | None = None
    vpn_public: bool | None = None
    vpn_timezone_mismatch: bool | None = None
    relay: bool | None = None
    proxy: bool | None = None
    tor: bool | None = None
    tampering: bool | None = None
    anti_detect_browser: bool | None = None
    datacenter: bool | None = None
    ip_blocklist: bool | None = None
    attack_source: bool | None = None
    virtual_machine: bool | None = None
    privacy_settings: bool | None = None
    location_spoofing: bool | None = None
    high_activity: bool | None = None
    developer_tools: bool | None = None
    emulator: bool | None = None
    replayed: bool | None = None
    suspect_score: int | None = None


class IpqsSignals(msgspec.Struct, frozen=True, kw_only=True):
    """What an IPQS device fingerprint result says; ``success`` False = a failed lookup."""

    success: bool = True
    fraud_chance: int | None = None
    recent_abuse: bool | None = None
    bot_status: bool | None = None
    guid_confidence: int | None = None
    mobile: bool | None = None
    unique: bool | None = None
    time: datetime | None = None


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    source: Source
    request_id: str
    # The device: Fingerprint's visitorId, or IPQS's guid (device_id when guid is absent).
    visitor_id: str | None
    time: datetime
    user_id: str | None = None
    email: str | None = None
    url: str | None = None
    ip: str | None = None
    linked_id: str | None = None
    visitor_found: bool | None = None
    confidence: float | None = None
    first_seen_at: datetime | None = None
    incognito: bool | None = None
    browser: BrowserDetails | None = None
    country: str | None = None
    signals: Signals = Signals()
    ipqs: IpqsSignals | None = None
    segment: SegmentTag | None = None

    @property
    def idempotency_scope(self) -> Literal["fp", "ipqs"]:
        """v3 request ids and v4 event ids are one Fingerprint namespace."""
        return "ipqs" if self.source == "ipqs" else "fp"

    @property
    def device_kind(self) -> Literal["fp", "ipqs"]:
        """Fingerprint visitor ids and IPQS guids are different id spaces."""
        return self.idempotency_scope
