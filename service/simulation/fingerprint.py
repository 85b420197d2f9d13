"""Fingerprint's two webhook formats for one visit: what fires, and the v3 / v4 bodies.

Both formats are views of the same ``Derived`` readout, so a v3 and a v4 event of the same
visit would report identical signals and the same Suspect Score. Member order follows
Fingerprint's published examples; mobile-only signals are present and false, as in its web
example.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

from service.baseline_model import SUSPECT_SCORE_POINTS
from service.simulation import devices, geo
from service.simulation.bodies import (
    Identify,
    Integrations,
    Segment,
    Tag,
    Track,
    V3Blocklist,
    V3BlocklistDetails,
    V3Bot,
    V3Confidence,
    V3Datacenter,
    V3HighActivity,
    V3IpInfo,
    V3IpInfoV4,
    V3Proxy,
    V3ProxyDetails,
    V3SeenAt,
    V3SuspectScore,
    V3Tampering,
    V3Vpn,
    V3VpnMethods,
    V3Webhook,
    V4Blocklist,
    V4Confidence,
    V4Identification,
    V4IpInfo,
    V4IpInfoV4,
    V4ProxyDetails,
    V4TamperingDetails,
    V4VpnMethods,
    V4Webhook,
)
from service.simulation.clock import HOUR_MS, iso
from service.simulation.velocity import Counts, Triple
from service.simulation.visit import Visit

# Fingerprint's published Suspect Score weights (web): one table, the baseline model's.
WEIGHTS = SUSPECT_SCORE_POINTS
# Fingerprint does not publish its high-activity threshold; no shopper here comes near 25
# identification events a day, while bots and busy fraud devices pass it.
HIGH_ACTIVITY_EVENTS_24H = 25

# Constant or per-device parts are encoded once and spliced in as raw JSON: building and
# encoding them for every event was most of the rendering time.
_RESULT = (Raw(b'{"result":false}'), Raw(b'{"result":true}'))
_FALSE = _RESULT[False]
_FACTORY_RESET = Raw(b'{"time":"1970-01-01T00:00:00Z","timestamp":0}')
_V4_BOT = {"bad": "bad", "good": "good", "notDetected": "not_detected"}


class Derived:
    """What both formats report identically, worked out once per visit."""

    __slots__ = (
        "blocklisted",
        "counts",
        "high",
        "listed_vpn",
        "score",
        "tz_mismatch",
        "user_id",
        "vpn",
    )

    def __init__(self, visit: Visit, user_id: str, counts: Counts) -> None:
        ip, signals = visit.ip, visit.signals
        self.user_id = user_id
        self.counts = counts
        self.tz_mismatch = ip.city.utc_offset_min != visit.tz_city.utc_offset_min
        self.listed_vpn = ip.public_vpn or ip.relay
        self.vpn = (
            self.listed_vpn or self.tz_mismatch or signals.os_mismatch or signals.auxiliary_mobile
        )
        self.blocklisted = ip.email_spam or ip.attack_source
        self.high = counts.events[2] >= HIGH_ACTIVITY_EVENTS_24H
        # Suspect Score: the sum of the weights of the signals that fired.
        w = WEIGHTS
        score = 0
        if signals.bot == "bad":
            score += w["bot"]
        if visit.incognito:
            score += w["incognito"]
        if self.tz_mismatch:
            score += w["vpn_timezone_mismatch"]
        if ip.public_vpn:
            score += w["vpn_public"]
        if ip.relay:
            score += w["relay"]
        if signals.tampering:
            score += w["tampering"]
        if signals.anti_detect:
            score += w["anti_detect_browser"]
        if signals.virtual_machine:
            score += w["virtual_machine"]
        if signals.privacy_settings:
            score += w["privacy_settings"]
        if ip.tor:
            score += w["tor"]
        if ip.proxy is not None:
            score += w["proxy"]
        if self.blocklisted:
            score += w["ip_blocklist"]
        if ip.attack_source:
            score += w["attack_source"]
        if self.high:
            score += w["high_activity"]
        self.score = score

    @property
    def vpn_confidence(self) -> str:
        # Confidence in the verdict either way: a known exit or a clean IP is sure, a time
        # zone mismatch alone is circumstantial.
        if not self.vpn or self.listed_vpn:
            return "high"
        return "medium" if self.tz_mismatch else "low"


def _tag(visit: Visit, user_id: str) -> Tag:
    traits = {"email": visit.account.email} if visit.email_trait else None
    properties = dict(visit.extra) if visit.extra else None
    return Tag(Integrations(Segment(Identify(user_id, traits), Track(visit.event, properties))))


def _v3_interval(counts: Triple) -> dict[str, dict[str, int]]:
    return {"intervals": {"5m": counts[0], "1h": counts[1], "24h": counts[2]}}


def _v4_interval(counts: Triple) -> dict[str, int]:
    return {"5_minutes": counts[0], "1_hour": counts[1], "24_hours": counts[2]}


def v3_body(visit: Visit, d: Derived) -> V3Webhook:
    device, ip, signals = visit.device, visit.ip, visit.signals
    profile = device.profile
    geolocation = geo.v3_geolocation(ip.city)
    previous = iso(visit.previous_seen_ms) if visit.previous_seen_ms is not None else None
    browser = device.wire_cache.get("v3")
    if browser is None:
        browser = device.wire_cache["v3"] = _raw(
            {
                "browserName": profile.browser,
                "browserFullVersion": profile.full,
                "browserMajorVersion": profile.major,
                "os": profile.os,
                "osVersion": profile.os_version,
                "device": profile.device,
                "userAgent": profile.user_agent,
            }
        )
    proxy = V3Proxy(False)
    if ip.proxy is not None:
        # Fingerprint gives the proxy's last sighting with hourly resolution.
        last_hour = iso(visit.time_ms)[:13] + ":00:00Z"
        proxy = V3Proxy(True, "high", V3ProxyDetails(ip.proxy, last_hour))
    return V3Webhook(
        request_id=visit.request_id,
        url=visit.url,
        ip=ip.address,
        tag=_tag(visit, d.user_id),
        time=iso(visit.time_ms),
        timestamp=visit.time_ms,
        ip_location=geolocation,
        linked_id=d.user_id if visit.linked else None,
        visitor_id=device.visitor_id,
        visitor_found=visit.previous_seen_ms is not None,
        confidence=V3Confidence(visit.confidence),
        first_seen_at=_v3_first_seen(device),
        last_seen_at=V3SeenAt(previous, previous),
        browser_details=browser,
        incognito=visit.incognito,
        client_referrer=visit.referrer,
        bot=V3Bot(signals.bot, signals.bot_type),
        user_agent=profile.user_agent,
        root_apps=_FALSE,
        emulator=_FALSE,
        ip_info=V3IpInfo(
            V3IpInfoV4(
                ip.address,
                geolocation,
                _v3_asn(ip),
                V3Datacenter(ip.datacenter, ip.network.datacenter),
            )
        ),
        ip_blocklist=V3Blocklist(
            d.blocklisted, V3BlocklistDetails(ip.email_spam, ip.attack_source)
        ),
        tor=_RESULT[ip.tor],
        vpn=V3Vpn(
            d.vpn,
            d.vpn_confidence,
            visit.tz_city.timezone,
            "unknown",
            V3VpnMethods(
                d.tz_mismatch,
                ip.public_vpn,
                signals.auxiliary_mobile,
                signals.os_mismatch,
                ip.relay,
            ),
        ),
        proxy=proxy,
        tampering=V3Tampering(signals.tampering, signals.anomaly_score, signals.anti_detect),
        cloned_app=_FALSE,
        factory_reset=_FACTORY_RESET,
        jailbroken=_FALSE,
        frida=_FALSE,
        privacy_settings=_RESULT[signals.privacy_settings],
        virtual_machine=_RESULT[signals.virtual_machine],
        high_activity=V3HighActivity(True, d.counts.events[2]) if d.high else V3HighActivity(False),
        location_spoofing=_RESULT[signals.location_spoofing],
        suspect_score=V3SuspectScore(d.score),
        velocity=_v3_velocity(d.counts),
        developer_tools=_RESULT[signals.developer_tools],
        mitm_attack=_FALSE,
        sdk=_sdk(device.sdk_version),
        replayed=False,
    )


def v4_body(visit: Visit, d: Derived) -> V4Webhook:
    device, ip, signals = visit.device, visit.ip, visit.signals
    profile = device.profile
    found = visit.previous_seen_ms is not None
    browser = device.wire_cache.get("v4")
    if browser is None:
        browser = device.wire_cache["v4"] = _raw(
            {
                "browser_name": profile.browser,
                "browser_major_version": profile.major,
                "browser_full_version": profile.full,
                "os": profile.os,
                "os_version": profile.os_version,
                "device": profile.device,
            }
        )
    proxy_details = None
    if ip.proxy is not None:
        proxy_details = V4ProxyDetails(
            ip.proxy, visit.time_ms // HOUR_MS * HOUR_MS, ip.proxy_provider or "unknown"
        )
    return V4Webhook(
        linked_id=d.user_id if visit.linked else None,
        tags=_tag(visit, d.user_id),
        timestamp=visit.time_ms,
        event_id=visit.request_id,
        url=visit.url,
        ip_address=ip.address,
        user_agent=profile.user_agent,
        client_referrer=visit.referrer,
        browser_details=browser,
        identification=V4Identification(
            device.visitor_id,
            V4Confidence(visit.confidence, "1.1"),
            found,
            device.first_seen_ms,
            # v4 reports the current event as the last sighting of a new visitor.
            visit.previous_seen_ms if visit.previous_seen_ms is not None else visit.time_ms,
        ),
        bot=_V4_BOT[signals.bot],
        bot_type=signals.bot_type,
        root_apps=False,
        emulator=False,
        ip_info=V4IpInfo(
            V4IpInfoV4(
                ip.address,
                geo.v4_geolocation(ip.city),
                str(ip.network.asn),
                ip.network.name,
                _network(ip),
                ip.network.asn_type,
                ip.datacenter,
                ip.network.datacenter,
            )
        ),
        ip_blocklist=V4Blocklist(ip.email_spam, ip.attack_source, ip.tor),
        proxy=ip.proxy is not None,
        proxy_confidence="high" if ip.proxy is not None else None,
        proxy_details=proxy_details,
        vpn=d.vpn,
        vpn_confidence=d.vpn_confidence,
        vpn_origin_timezone=visit.tz_city.timezone,
        vpn_origin_country="unknown",
        vpn_methods=V4VpnMethods(
            d.tz_mismatch, ip.public_vpn, signals.auxiliary_mobile, signals.os_mismatch, ip.relay
        ),
        incognito=visit.incognito,
        tampering=signals.tampering,
        tampering_details=V4TamperingDetails(signals.anomaly_score, signals.anti_detect),
        cloned_app=False,
        factory_reset_timestamp=0,
        jailbroken=False,
        simulator=False,
        frida=False,
        privacy_settings=signals.privacy_settings,
        virtual_machine=signals.virtual_machine,
        location_spoofing=signals.location_spoofing,
        velocity=_v4_velocity(d.counts),
        developer_tools=signals.developer_tools,
        mitm_attack=False,
        sdk=_sdk(device.sdk_version),
        replayed=False,
        high_activity_device=d.high,
        suspect_score=d.score,
    )


def _v3_first_seen(device: devices.Device) -> Raw:
    # Fixed from the device's first sighting on, which precedes rendering any of its events.
    raw = device.wire_cache.get("first_seen")
    if raw is None:
        raw = device.wire_cache["first_seen"] = _raw(
            {
                "global": iso(device.first_seen_global_ms),
                "subscription": iso(device.first_seen_ms),
            }
        )
    return raw


def _raw(value: dict[str, Any]) -> Raw:
    return Raw(msgspec.json.encode(value))


_SDKS = {version: _raw({"platform": "js", "version": version}) for version in devices.SDK_VERSIONS}


def _sdk(version: str) -> Raw:
    return _SDKS[version]


def _network(ip: geo.Ip) -> str:
    a, b = ip.network.blocks[ip.block]
    return f"{a}.{b}.0.0/16"


def _v3_asn(ip: geo.Ip) -> Raw:
    key = (ip.network, ip.block)
    asn = _V3_ASNS.get(key)
    if asn is None:
        asn = _V3_ASNS[key] = _raw(
            {"asn": str(ip.network.asn), "name": ip.network.name, "network": _network(ip)}
        )
    return asn


_V3_ASNS: dict[tuple[geo.Network, int], Raw] = {}


def _v3_velocity(counts: Counts) -> Raw:
    raw = _V3_VELOCITY.get(counts)
    if raw is None:
        raw = _V3_VELOCITY[counts] = _raw(_v3_velocity_object(counts))
        if len(_V3_VELOCITY) > _VELOCITY_CACHE:
            _V3_VELOCITY.clear()
    return raw


def _v4_velocity(counts: Counts) -> Raw:
    raw = _V4_VELOCITY.get(counts)
    if raw is None:
        raw = _V4_VELOCITY[counts] = _raw(_v4_velocity_object(counts))
        if len(_V4_VELOCITY) > _VELOCITY_CACHE:
            _V4_VELOCITY.clear()
    return raw


# Most events share one of a few thousand count combinations: encode each combination once.
_VELOCITY_CACHE = 4096
_V3_VELOCITY: dict[Counts, Raw] = {}
_V4_VELOCITY: dict[Counts, Raw] = {}


def _v3_velocity_object(counts: Counts) -> dict[str, Any]:
    velocity: dict[str, Any] = {
        "distinctIp": _v3_interval(counts.distinct_ip),
        # Fingerprint's example shows an empty object when the visitor has no linked ids.
        "distinctLinkedId": _v3_interval(counts.distinct_linked_id)
        if counts.distinct_linked_id[2]
        else {},
        "distinctCountry": _v3_interval(counts.distinct_country),
        "events": _v3_interval(counts.events),
        "ipEvents": _v3_interval(counts.ip_events),
    }
    if counts.distinct_ip_by_linked_id is not None:
        velocity["distinctIpByLinkedId"] = _v3_interval(counts.distinct_ip_by_linked_id)
    if counts.distinct_visitor_id_by_linked_id is not None:
        velocity["distinctVisitorIdByLinkedId"] = _v3_interval(
            counts.distinct_visitor_id_by_linked_id
        )
    return velocity


def _v4_velocity_object(counts: Counts) -> dict[str, Any]:
    velocity: dict[str, Any] = {
        "distinct_ip": _v4_interval(counts.distinct_ip),
        "distinct_country": _v4_interval(counts.distinct_country),
        "events": _v4_interval(counts.events),
        "ip_events": _v4_interval(counts.ip_events),
    }
    if counts.distinct_linked_id[2]:
        velocity["distinct_linked_id"] = _v4_interval(counts.distinct_linked_id)
    if counts.distinct_ip_by_linked_id is not None:
        velocity["distinct_ip_by_linked_id"] = _v4_interval(counts.distinct_ip_by_linked_id)
    if counts.distinct_visitor_id_by_linked_id is not None:
        velocity["distinct_visitor_id_by_linked_id"] = _v4_interval(
            counts.distinct_visitor_id_by_linked_id
        )
    return velocity
