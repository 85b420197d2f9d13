"""Fingerprint's legacy (v3) identification webhook: camelCase, ``requestId`` / ``tag``.

Only the members riskwire uses are declared; unknown members are skipped by the decoder, so
Fingerprint can add fields without breaking ingestion. Smart signals are optional objects
because each one is absent when the product is not enabled (or carries an ``error`` instead).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from service.fingerprint_v4 import EpochMillis, IpAddress, LinkedId, SuspectScoreValue
from service.segment_tag import Tag

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
VisitorId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
TagValue = Tag | list[Any] | str | int | float | bool | None


class _Camel(msgspec.Struct, rename="camel", frozen=True):
    pass


class Confidence(_Camel, frozen=True):
    score: float | None = None


class SeenAt(_Camel, frozen=True):
    subscription: datetime | None = None


class BrowserDetails(_Camel, frozen=True):
    browser_name: str | None = None
    browser_major_version: str | None = None
    browser_full_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    user_agent: str | None = None


class BoolResult(_Camel, frozen=True):
    result: bool | None = None


class BotResult(_Camel, frozen=True):
    result: str | None = None  # "notDetected" | "good" | "bad"


class VpnMethods(_Camel, frozen=True):
    timezone_mismatch: bool | None = None
    # The wire spells it publicVPN, not the camelCase rule's publicVpn.
    public_vpn: bool | None = msgspec.field(default=None, name="publicVPN")
    relay: bool | None = None


class Vpn(_Camel, frozen=True):
    result: bool | None = None
    methods: VpnMethods | None = None


class Tampering(_Camel, frozen=True):
    result: bool | None = None
    anti_detect_browser: bool | None = None


class BlocklistDetails(_Camel, frozen=True):
    attack_source: bool | None = None


class IpBlocklist(_Camel, frozen=True):
    result: bool | None = None
    details: BlocklistDetails | None = None


class SuspectScore(_Camel, frozen=True):
    result: SuspectScoreValue | None = None


class Country(_Camel, frozen=True):
    code: str | None = None


class Geolocation(_Camel, frozen=True):
    country: Country | None = None


class Datacenter(_Camel, frozen=True):
    result: bool | None = None


class IpInfoEntry(_Camel, frozen=True):
    geolocation: Geolocation | None = None
    datacenter: Datacenter | None = None


class IpInfo(_Camel, frozen=True):
    v4: IpInfoEntry | None = None
    v6: IpInfoEntry | None = None


class WebhookV3(_Camel, frozen=True):
    request_id: RequestId
    visitor_id: VisitorId
    url: str | None = None
    ip: IpAddress | None = None
    tag: TagValue = None
    time: datetime | None = None
    timestamp: EpochMillis | None = None
    linked_id: LinkedId | None = None
    visitor_found: bool | None = None
    confidence: Confidence | None = None
    first_seen_at: SeenAt | None = None
    browser_details: BrowserDetails | None = None
    incognito: bool | None = None
    bot: BotResult | None = None
    ip_location: Geolocation | None = None
    ip_info: IpInfo | None = None
    ip_blocklist: IpBlocklist | None = None
    tor: BoolResult | None = None
    vpn: Vpn | None = None
    proxy: BoolResult | None = None
    tampering: Tampering | None = None
    virtual_machine: BoolResult | None = None
    privacy_settings: BoolResult | None = None
    location_spoofing: BoolResult | None = None
    high_activity: BoolResult | None = None
    developer_tools: BoolResult | None = None
    emulator: BoolResult | None = None
    suspect_score: SuspectScore | None = None
    replayed: bool | None = None
