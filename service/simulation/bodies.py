"""The vendors' JSON bodies as msgspec Structs, members in the order of their published examples.

Structs rather than dicts: the field types are checked, and msgspec builds and encodes them
several times faster, which matters at tens of thousands of events a second. Parts that
repeat verbatim (geolocation of a city, browser details of a device, constant mobile-only
signals) are ``msgspec.Raw``: JSON encoded once, spliced in as is.

Only members with a default are ever omitted (``omit_defaults``), and only the genuinely
optional ones have one, so e.g. ``"incognito": false`` is always present as on the wire.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

# --- the Segment tag a website passes to Fingerprint's agent ------------------------------


class Identify(msgspec.Struct, omit_defaults=True, rename="camel"):
    user_id: str
    traits: dict[str, str] | None = None


class Track(msgspec.Struct, omit_defaults=True):
    event: str
    properties: dict[str, str] | None = None


class Segment(msgspec.Struct):
    identify: Identify
    track: Track


class Integrations(msgspec.Struct):
    segment: Segment


class Tag(msgspec.Struct):
    integrations: Integrations


# --- Fingerprint v3 (legacy webhook, camelCase) -------------------------------------------


class V3Confidence(msgspec.Struct):
    score: float


class V3SeenAt(msgspec.Struct):
    global_: str | None = msgspec.field(name="global")
    subscription: str | None


class V3Bot(msgspec.Struct, omit_defaults=True):
    result: str
    type: str | None = None


class V3Datacenter(msgspec.Struct):
    result: bool
    name: str


class V3IpInfoV4(msgspec.Struct):
    address: str
    geolocation: Raw
    asn: Raw
    datacenter: V3Datacenter


class V3IpInfo(msgspec.Struct):
    v4: V3IpInfoV4


class V3BlocklistDetails(msgspec.Struct, rename="camel"):
    email_spam: bool
    attack_source: bool


class V3Blocklist(msgspec.Struct):
    result: bool
    details: V3BlocklistDetails


class V3VpnMethods(msgspec.Struct, rename="camel"):
    timezone_mismatch: bool
    public_vpn: bool = msgspec.field(name="publicVPN")  # Fingerprint's own capitalisation
    auxiliary_mobile: bool
    os_mismatch: bool
    relay: bool


class V3Vpn(msgspec.Struct, rename="camel"):
    result: bool
    confidence: str
    origin_timezone: str
    origin_country: str
    methods: V3VpnMethods


class V3ProxyDetails(msgspec.Struct, rename="camel"):
    proxy_type: str
    last_seen_at: str


class V3Proxy(msgspec.Struct, omit_defaults=True):
    result: bool
    confidence: str | None = None
    details: V3ProxyDetails | None = None


class V3Tampering(msgspec.Struct, rename="camel"):
    result: bool
    anomaly_score: float
    anti_detect_browser: bool


class V3HighActivity(msgspec.Struct, omit_defaults=True, rename="camel"):
    result: bool
    daily_requests: int | None = None


class V3SuspectScore(msgspec.Struct):
    result: int


class V3Webhook(msgspec.Struct, omit_defaults=True, rename="camel", kw_only=True):
    request_id: str
    url: str
    ip: str
    tag: Tag
    time: str
    timestamp: int
    ip_location: Raw
    linked_id: str | None = None
    visitor_id: str
    visitor_found: bool
    confidence: V3Confidence
    first_seen_at: Raw
    last_seen_at: V3SeenAt
    browser_details: Raw
    incognito: bool
    client_referrer: str
    bot: V3Bot
    user_agent: str
    root_apps: Raw
    emulator: Raw
    ip_info: V3IpInfo
    ip_blocklist: V3Blocklist
    tor: Raw
    vpn: V3Vpn
    proxy: V3Proxy
    tampering: V3Tampering
    cloned_app: Raw
    factory_reset: Raw
    jailbroken: Raw
    frida: Raw
    privacy_settings: Raw
    virtual_machine: Raw
    high_activity: V3HighActivity
    location_spoofing: Raw
    suspect_score: V3SuspectScore
    velocity: Raw
    developer_tools: Raw
    mitm_attack: Raw
    sdk: Raw
    replayed: bool


# --- Fingerprint v4 (flat, snake_case) ----------------------------------------------------


class V4Confidence(msgspec.Struct):
    score: float
    version: str


class V4Identification(msgspec.Struct):
    visitor_id: str
    confidence: V4Confidence
    visitor_found: bool
    first_seen_at: int
    last_seen_at: int


class V4IpInfoV4(msgspec.Struct):
    address: str
    geolocation: Raw
    asn: str
    asn_name: str
    asn_network: str
    asn_type: str
    datacenter_result: bool
    datacenter_name: str


class V4IpInfo(msgspec.Struct):
    v4: V4IpInfoV4


class V4Blocklist(msgspec.Struct):
    email_spam: bool
    attack_source: bool
    tor_node: bool


class V4ProxyDetails(msgspec.Struct):
    proxy_type: str
    last_seen_at: int
    provider: str


class V4VpnMethods(msgspec.Struct):
    timezone_mismatch: bool
    public_vpn: bool
    auxiliary_mobile: bool
    os_mismatch: bool
    relay: bool


class V4TamperingDetails(msgspec.Struct):
    anomaly_score: float
    anti_detect_browser: bool


class V4Webhook(msgspec.Struct, omit_defaults=True, kw_only=True):
    linked_id: str | None = None
    tags: Tag
    timestamp: int
    event_id: str
    url: str
    ip_address: str
    user_agent: str
    client_referrer: str
    browser_details: Raw
    identification: V4Identification
    bot: str
    bot_type: str | None = None
    root_apps: bool
    emulator: bool
    ip_info: V4IpInfo
    ip_blocklist: V4Blocklist
    proxy: bool
    proxy_confidence: str | None = None
    proxy_details: V4ProxyDetails | None = None
    vpn: bool
    vpn_confidence: str
    vpn_origin_timezone: str
    vpn_origin_country: str
    vpn_methods: V4VpnMethods
    incognito: bool
    tampering: bool
    tampering_details: V4TamperingDetails
    cloned_app: bool
    factory_reset_timestamp: int
    jailbroken: bool
    simulator: bool
    frida: bool
    privacy_settings: bool
    virtual_machine: bool
    location_spoofing: bool
    velocity: Raw
    developer_tools: bool
    mitm_attack: bool
    sdk: Raw
    replayed: bool
    high_activity_device: bool
    suspect_score: int


# --- IPQS device fingerprint result -------------------------------------------------------


class IpqsSuccess(msgspec.Struct, omit_defaults=True, kw_only=True):
    message: str
    success: bool
    device_id: str
    guid: str
    guid_confidence: int
    fraud_chance: int
    is_crawler: bool
    connection_type: str
    proxy: bool
    vpn: bool
    tor: bool
    recent_abuse: bool
    bot_status: bool
    isp: str = msgspec.field(name="ISP")
    country: str
    city: str
    region: str
    timezone: str
    mobile: bool
    operating_system: str
    browser: str
    brand: str
    model: str
    ip_address: str
    unique: bool
    request_id: str
    fast_processing: bool
    time: int
    # Custom tracking variables, echoed back by IPQS under the site's own names.
    user_id: str = msgspec.field(name="userID")
    email: str | None = None


class IpqsFailure(msgspec.Struct):
    message: str
    success: bool
    request_id: str
    time: int
    user_id: str = msgspec.field(name="userID")
