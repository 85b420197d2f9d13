"""Fingerprint's current (v4) webhook: the flat, snake_case event of ``GET /v4/events/{event_id}``.

As for v3, only used members are declared and unknown ones are skipped.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from service.segment_tag import Tag

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
VisitorId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# Up to the end of year 9999: later values cannot be datetimes and would fail later, as 500s.
EpochMillis = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999)]
# Fingerprint refuses longer linked ids ("linked_id can't be greater than 256 characters").
LinkedId = Annotated[str, msgspec.Meta(max_length=256)]
IpAddress = Annotated[str, msgspec.Meta(max_length=64)]
# 0 to the sum of the Smart Signal weights; Fingerprint's SDKs read it as a 32-bit int. An
# unbounded integer would overflow the float features (a 500).
SuspectScoreValue = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class Confidence(msgspec.Struct, frozen=True):
    score: float | None = None


class Identification(msgspec.Struct, frozen=True):
    visitor_id: VisitorId
    confidence: Confidence | None = None
    visitor_found: bool | None = None
    first_seen_at: EpochMillis | None = None
    last_seen_at: EpochMillis | None = None


class BrowserDetails(msgspec.Struct, frozen=True):
    browser_name: str | None = None
    browser_major_version: str | None = None
    browser_full_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None


class Geolocation(msgspec.Struct, frozen=True):
    country_code: str | None = None


class IpInfoEntry(msgspec.Struct, frozen=True):
    address: str | None = None
    geolocation: Geolocation | None = None
    asn: str | None = None
    asn_name: str | None = None
    asn_type: str | None = None
    datacenter_result: bool | None = None
    datacenter_name: str | None = None


class IpInfo(msgspec.Struct, frozen=True):
    v4: IpInfoEntry | None = None
    v6: IpInfoEntry | None = None


class IpBlocklist(msgspec.Struct, frozen=True):
    email_spam: bool | None = None
    attack_source: bool | None = None
    tor_node: bool | None = None


class VpnMethods(msgspec.Struct, frozen=True):
    timezone_mismatch: bool | None = None
    public_vpn: bool | None = None
    auxiliary_mobile: bool | None = None
    os_mismatch: bool | None = None
    relay: bool | None = None


class TamperingDetails(msgspec.Struct, frozen=True):
    anomaly_score: float | None = None
    anti_detect_browser: bool | None = None


class WebhookV4(msgspec.Struct, frozen=True):
    event_id: EventId
    timestamp: EpochMillis
    identification: Identification | None = None
    url: str | None = None
    ip_address: IpAddress | None = None
    user_agent: str | None = None
    client_referrer: str | None = None
    linked_id: LinkedId | None = None
    tags: Tag | None = None
    browser_details: BrowserDetails | None = None
    incognito: bool | None = None
    bot: str | None = None  # "bad" | "good" | "not_detected"
    ip_info: IpInfo | None = None
    ip_blocklist: IpBlocklist | None = None
    proxy: bool | None = None
    vpn: bool | None = None
    vpn_methods: VpnMethods | None = None
    tor: bool | None = None
    tampering: bool | None = None
    tampering_details: TamperingDetails | None = None
    virtual_machine: bool | None = None
    privacy_settings: bool | None = None
    location_spoofing: bool | None = None
    high_activity_device: bool | None = None
    developer_tools: bool | None = None
    emulator: bool | None = None
    suspect_score: SuspectScoreValue | None = None
    replayed: bool | None = None
