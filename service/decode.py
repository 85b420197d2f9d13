"""Raw webhook bytes → ``Observation``: detect the format, decode with msgspec, normalise.

Decoders are built once here and reused; each request body is parsed straight from bytes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from service import fingerprint_v3 as v3
from service import fingerprint_v4 as v4
from service.errors import InvalidPayload, MalformedBody, invalid_payload
from service.ipqs import IpqsResult
from service.observation import BrowserDetails, IpqsSignals, Observation, Signals
from service.segment_tag import SegmentTag, Tag


class _FormatProbe(msgspec.Struct):
    """Just enough of a body to tell v3 (``requestId``), v4 (``event_id``) and IPQS
    (``request_id``) apart."""

    request_id: object = msgspec.field(default=msgspec.UNSET, name="requestId")
    event_id: object = msgspec.UNSET
    ipqs_request_id: object = msgspec.field(default=msgspec.UNSET, name="request_id")


T = TypeVar("T")

_probe = msgspec.json.Decoder(_FormatProbe)
_v3 = msgspec.json.Decoder(v3.WebhookV3)
_v4 = msgspec.json.Decoder(v4.WebhookV4)
_ipqs = msgspec.json.Decoder(IpqsResult)


def decode_with(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode ``body``; not JSON -> 400, JSON of the wrong shape -> 422 naming the field."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise invalid_payload(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        # msgspec checks the UTF-8 of the strings it keeps when it builds them.
        raise MalformedBody("body is not valid JSON: a string is not valid UTF-8") from None
    except RecursionError:
        raise MalformedBody("body is not valid JSON: it nests too deeply") from None


# Free-form tag members are forwarded to Segment and stored as they came. Bounded here, so
# that encoding them, and decoding them back from Redis deeper in some call stack, can
# neither recurse past Python's limit nor meet an integer msgspec cannot encode.
MAX_FREE_FORM_NESTING = 32
_ENCODABLE_INTS = range(-(2**63), 2**64)
_FREE_FORM = (
    ("identify", "traits"),
    ("page", "properties"),
    ("page", "context"),
    ("track", "properties"),
    ("group", "traits"),
)


def _check_segment_tag(segment: SegmentTag | None, at: str) -> None:
    if segment is None:
        return
    for spec, member in _FREE_FORM:
        part = getattr(segment, spec)
        if part is not None:
            _check_free_form(getattr(part, member), f"{at}.{spec}.{member}")


def _check_free_form(value: dict[str, Any], at: str) -> None:
    if not well_formed(value):
        _name_fault(value, at)


def well_formed(value: dict[str, Any]) -> bool:
    """Whether ``_name_fault`` would pass ``value``: the same walk, level by level, without
    the paths it builds for every member (most of a tagged event's decoding time, and
    only needed to name a fault)."""
    level: list[dict[str, Any] | list[Any]] = [value]
    for _ in range(MAX_FREE_FORM_NESTING):
        deeper: list[dict[str, Any] | list[Any]] = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    deeper.append(child)
                elif type(child) is int and child not in _ENCODABLE_INTS:
                    return False
        if not deeper:
            return True
        level = deeper
    return False


def _name_fault(value: dict[str, Any], at: str) -> None:
    stack: list[tuple[object, str, int]] = [(value, at, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            children = [(f"{path}.{key}", child) for key, child in node.items()]
        elif isinstance(node, list):
            children = [(f"{path}[{n}]", child) for n, child in enumerate(node)]
        else:
            if type(node) is int and node not in _ENCODABLE_INTS:
                raise InvalidPayload("integer out of the 64-bit range", field=path)
            continue
        if depth > MAX_FREE_FORM_NESTING:
            raise InvalidPayload(f"nested deeper than {MAX_FREE_FORM_NESTING} levels", field=path)
        stack.extend((child, child_path, depth + 1) for child_path, child in children)


# Ids become idempotency keys, Redis keys and messageIds: no real one has control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str, field: str) -> str:
    if _CONTROL.search(value):
        raise InvalidPayload("must not contain control characters", field=field)
    return value


def decode_fingerprint(body: bytes) -> Observation:
    """Decode a Fingerprint webhook of either format; raise a 4xx ``RiskwireError`` if unusable."""
    if not body:
        raise MalformedBody("body is empty")
    guessed = _guessed(body, None)
    if guessed is not None:
        return guessed
    obs = _fingerprint(decode_with(_probe, body), body)
    if obs is None:
        raise InvalidPayload(
            "not a Fingerprint webhook: expected `requestId` (v3) or `event_id` (v4)",
            field="$.requestId",
        )
    return obs


def _fingerprint(probe: _FormatProbe, body: bytes) -> Observation | None:
    if probe.request_id is not msgspec.UNSET:
        return from_v3(decode_with(_v3, body))
    if probe.event_id is not msgspec.UNSET:
        return from_v4(decode_with(_v4, body))
    return None


def decode_event(body: bytes, received_at: datetime) -> Observation:
    """Any stored or exported event: Fingerprint v3 / v4 webhook or IPQS result."""
    probe = decode_with(_probe, body)
    obs = _fingerprint(probe, body)
    if obs is not None:
        return obs
    if probe.ipqs_request_id is not msgspec.UNSET:
        return decode_ipqs(body, received_at)
    raise InvalidPayload(
        "neither a Fingerprint event (requestId / event_id) nor an IPQS result (request_id)",
        field="$",
    )


# The probe's three keys as the probe decodes them (any JSON value), on top of a format's
# own fields: a body one of these reads is one the probe reads too (the probe skips, with
# fewer checks, all the rest), and which of the keys it holds says which format the probe
# would choose.


class _ProbedV3(v3.WebhookV3, frozen=True):
    event_id: object = msgspec.field(default=msgspec.UNSET, name="event_id")
    ipqs_request_id: object = msgspec.field(default=msgspec.UNSET, name="request_id")


class _ProbedV4(v4.WebhookV4, frozen=True):
    v3_request_id: object = msgspec.field(default=msgspec.UNSET, name="requestId")
    ipqs_request_id: object = msgspec.field(default=msgspec.UNSET, name="request_id")


class _ProbedIpqs(IpqsResult, frozen=True, kw_only=True):
    v3_request_id: object = msgspec.field(default=msgspec.UNSET, name="requestId")
    event_id: object = msgspec.field(default=msgspec.UNSET, name="event_id")


_probed_v3 = msgspec.json.Decoder(_ProbedV3)
_probed_v4 = msgspec.json.Decoder(_ProbedV4)
_probed_ipqs = msgspec.json.Decoder(_ProbedIpqs)
# How far into a body its format's key is looked for; only a guess (see below).
_GUESS_SPAN = 256


def decode_event_unprobed(body: bytes, received_at: datetime) -> Observation:
    """``decode_event`` (a test holds the two equal, errors included) without its probe, for
    batch rescoring, where every stored event is decoded (see ``_guessed``)."""
    return _guessed(body, received_at) or decode_event(body, received_at)


def _guessed(body: bytes, received_at: datetime | None) -> Observation | None:
    """The body decoded once, without the probe (a parse of the whole body costing half
    the event's own decode), or None: the caller then takes the probe's path, which gives
    the same observation or error from the start.

    The format is guessed from a key near the start (``requestId``: v3, ``event_id``: v4,
    else IPQS, guessed only given ``received_at``) and the body decoded with the probe's
    keys (``_Probed*``). The guess stands only if that decode proves the probe would have
    made it: v3 requires ``requestId``, which the probe tries first; v4 and IPQS hold none
    of the keys the probe tries before theirs."""
    try:
        if body.find(b'"requestId"', 0, _GUESS_SPAN) >= 0:
            return from_v3(_probed_v3.decode(body))
        if body.find(b'"event_id"', 0, _GUESS_SPAN) >= 0:
            event = _probed_v4.decode(body)
            if event.v3_request_id is msgspec.UNSET:
                return from_v4(event)
        elif received_at is not None:
            result = _probed_ipqs.decode(body)
            if result.v3_request_id is msgspec.UNSET and result.event_id is msgspec.UNSET:
                return from_ipqs(result, received_at)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    return None


def decode_ipqs(body: bytes, received_at: datetime) -> Observation:
    """Decode an IPQS device fingerprint result; ``received_at`` stands in for a missing time."""
    if not body:
        raise MalformedBody("body is empty")
    return from_ipqs(decode_with(_ipqs, body), received_at)


def from_ipqs(result: IpqsResult, received_at: datetime) -> Observation:
    time = datetime.fromtimestamp(result.time, tz=UTC) if result.time is not None else received_at
    if result.success:
        ipqs = IpqsSignals(
            success=True,
            fraud_chance=result.fraud_chance
            if result.fraud_chance is not None
            else result.fraud_score,
            recent_abuse=result.recent_abuse,
            bot_status=result.bot_status,
            guid_confidence=result.guid_confidence,
            mobile=result.mobile,
            unique=result.unique,
            time=time,
        )
        signals = Signals(proxy=result.proxy, vpn=result.vpn, tor=result.tor)
    else:
        # A failed lookup says nothing about the device: no signals, and never "clean".
        ipqs = IpqsSignals(success=False, time=time)
        signals = Signals()
    return Observation(
        source="ipqs",
        request_id=_printable(result.request_id, "$.request_id"),
        visitor_id=result.guid or result.device_id or None,
        time=time,
        user_id=result.user_id_var or result.user_id,
        email=result.email,
        ip=result.ip_address,
        country=result.country_code or result.country,
        signals=signals,
        ipqs=ipqs,
    )


def _millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def from_v3(event: v3.WebhookV3) -> Observation:
    if event.time is not None:
        time = event.time
    elif event.timestamp is not None:
        time = _millis(event.timestamp)
    else:
        raise InvalidPayload("event time is missing", field="$.time")
    ip_v4 = event.ip_info.v4 if event.ip_info else None
    ip_v6 = event.ip_info.v6 if event.ip_info else None
    country = _v3_country(ip_v4) or _v3_country(ip_v6)
    if country is None and event.ip_location and event.ip_location.country:
        country = event.ip_location.country.code
    vpn_methods = event.vpn.methods if event.vpn else None
    blocklist = event.ip_blocklist
    browser = event.browser_details
    segment = event.tag.segment if isinstance(event.tag, Tag) else None
    _check_segment_tag(segment, "$.tag.integrations.segment")
    return Observation(
        source="fingerprint_v3",
        request_id=_printable(event.request_id, "$.requestId"),
        visitor_id=_printable(event.visitor_id, "$.visitorId"),
        time=time,
        url=event.url,
        ip=event.ip,
        linked_id=event.linked_id,
        visitor_found=event.visitor_found,
        confidence=event.confidence.score if event.confidence else None,
        first_seen_at=event.first_seen_at.subscription if event.first_seen_at else None,
        incognito=event.incognito,
        browser=BrowserDetails(
            browser_name=browser.browser_name,
            browser_major_version=browser.browser_major_version,
            browser_full_version=browser.browser_full_version,
            os=browser.os,
            os_version=browser.os_version,
            device=browser.device,
            user_agent=browser.user_agent,
        )
        if browser
        else None,
        country=country,
        signals=Signals(
            bot=(event.bot.result == "bad") if event.bot and event.bot.result else None,
            vpn=_result(event.vpn),
            vpn_public=vpn_methods.public_vpn if vpn_methods else None,
            vpn_timezone_mismatch=vpn_methods.timezone_mismatch if vpn_methods else None,
            relay=vpn_methods.relay if vpn_methods else None,
            proxy=_result(event.proxy),
            tor=_result(event.tor),
            tampering=_result(event.tampering),
            anti_detect_browser=event.tampering.anti_detect_browser if event.tampering else None,
            datacenter=_any_true(
                ip_v4.datacenter.result if ip_v4 and ip_v4.datacenter else None,
                ip_v6.datacenter.result if ip_v6 and ip_v6.datacenter else None,
            ),
            ip_blocklist=_result(blocklist),
            attack_source=blocklist.details.attack_source
            if blocklist and blocklist.details
            else None,
            virtual_machine=_result(event.virtual_machine),
            privacy_settings=_result(event.privacy_settings),
            location_spoofing=_result(event.location_spoofing),
            high_activity=_result(event.high_activity),
            developer_tools=_result(event.developer_tools),
            emulator=_result(event.emulator),
            replayed=event.replayed,
            suspect_score=event.suspect_score.result if event.suspect_score else None,
        ),
        segment=segment,
        user_id=segment.identify.user_id if segment and segment.identify else None,
    )


def from_v4(event: v4.WebhookV4) -> Observation:
    ident = event.identification
    if ident is None:
        # Edge-only events carry no visitor: there is nobody to identify or score.
        raise InvalidPayload(
            "event has no identification (visitor id); only identification events are accepted",
            field="$.identification",
        )
    ip_v4 = event.ip_info.v4 if event.ip_info else None
    ip_v6 = event.ip_info.v6 if event.ip_info else None
    country = _v4_country(ip_v4) or _v4_country(ip_v6)
    blocklist = event.ip_blocklist
    methods = event.vpn_methods
    browser = event.browser_details
    tor = event.tor
    if tor is None and blocklist is not None:
        tor = blocklist.tor_node
    segment = event.tags.segment if event.tags else None
    _check_segment_tag(segment, "$.tags.integrations.segment")
    return Observation(
        source="fingerprint_v4",
        request_id=_printable(event.event_id, "$.event_id"),
        visitor_id=_printable(ident.visitor_id, "$.identification.visitor_id"),
        time=_millis(event.timestamp),
        url=event.url,
        ip=event.ip_address,
        linked_id=event.linked_id,
        visitor_found=ident.visitor_found,
        confidence=ident.confidence.score if ident.confidence else None,
        first_seen_at=_millis(ident.first_seen_at) if ident.first_seen_at is not None else None,
        incognito=event.incognito,
        browser=BrowserDetails(
            browser_name=browser.browser_name,
            browser_major_version=browser.browser_major_version,
            browser_full_version=browser.browser_full_version,
            os=browser.os,
            os_version=browser.os_version,
            device=browser.device,
            user_agent=event.user_agent,
        )
        if browser
        else None,
        country=country,
        signals=Signals(
            bot=(event.bot == "bad") if event.bot else None,
            vpn=event.vpn,
            vpn_public=methods.public_vpn if methods else None,
            vpn_timezone_mismatch=methods.timezone_mismatch if methods else None,
            relay=methods.relay if methods else None,
            proxy=event.proxy,
            tor=tor,
            tampering=event.tampering,
            anti_detect_browser=event.tampering_details.anti_detect_browser
            if event.tampering_details
            else None,
            datacenter=_any_true(
                ip_v4.datacenter_result if ip_v4 else None,
                ip_v6.datacenter_result if ip_v6 else None,
            ),
            ip_blocklist=_any_true(blocklist.email_spam, blocklist.attack_source)
            if blocklist
            else None,
            attack_source=blocklist.attack_source if blocklist else None,
            virtual_machine=event.virtual_machine,
            privacy_settings=event.privacy_settings,
            location_spoofing=event.location_spoofing,
            high_activity=event.high_activity_device,
            developer_tools=event.developer_tools,
            emulator=event.emulator,
            replayed=event.replayed,
            suspect_score=event.suspect_score,
        ),
        segment=segment,
        user_id=segment.identify.user_id if segment and segment.identify else None,
    )


def _result(signal: object) -> bool | None:
    value = getattr(signal, "result", None)
    return value if isinstance(value, bool) else None


def _any_true(*values: bool | None) -> bool | None:
    known = [v for v in values if v is not None]
    return any(known) if known else None


def _v3_country(entry: v3.IpInfoEntry | None) -> str | None:
    if entry and entry.geolocation and entry.geolocation.country:
        return entry.geolocation.country.code
    return None


def _v4_country(entry: v4.IpInfoEntry | None) -> str | None:
    return entry.geolocation.country_code if entry and entry.geolocation else None
