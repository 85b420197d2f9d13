"""Visits → the exact bytes Fingerprint (v3 or v4 webhook) and IPQS would send.

The renderer sees visits in time order, which is what lets it keep the state the vendors
derive from a stream: Velocity counts (and the high-activity flag built on them), IPQS's
``unique``, and the numbering of accounts created during the run.
"""

from __future__ import annotations

import msgspec

from service.simulation.bodies import IpqsFailure, IpqsSuccess
from service.simulation.fingerprint import Derived, v3_body, v4_body
from service.simulation.velocity import Velocity
from service.simulation.visit import Account, Visit
from service.simulation.world import FIRST_NEW_USER_ID

_ISP_NAMES = {
    7922: "Comcast Cable",
    7018: "AT&T Internet",
    701: "Verizon Fios",
    20115: "Charter Communications",
    21928: "T-Mobile USA",
    22394: "Verizon Wireless",
    2856: "British Telecommunications",
    5089: "Virgin Media",
    3320: "Deutsche Telekom",
    3215: "Orange",
    13335: "Cloudflare",
    36183: "Akamai Technologies",
}
_CONNECTION = {"isp": "Residential", "mobile": "Mobile", "hosting": "Data Center"}


class Renderer:
    def __init__(self) -> None:
        self._velocity = Velocity()
        self._next_user = FIRST_NEW_USER_ID
        self._encode = msgspec.json.Encoder().encode

    def user_id(self, account: Account) -> str:
        if account.user_id is None:
            account.user_id = f"u-{self._next_user}"
            self._next_user += 1
        return account.user_id

    def fingerprint(self, visit: Visit) -> bytes:
        user_id = self.user_id(visit.account)
        counts = self._velocity.observe(
            visit.time_ms,
            visit.device.visitor_id,
            visit.ip.address,
            visit.ip.city.country,
            user_id if visit.linked else None,
        )
        derived = Derived(visit, user_id, counts)
        if visit.format == "v4":
            return self._encode(v4_body(visit, derived))
        return self._encode(v3_body(visit, derived))

    def ipqs(self, visit: Visit) -> bytes:
        outcome = visit.ipqs
        if outcome is None:
            raise ValueError("visit has no IPQS result")
        user_id = self.user_id(visit.account)
        if not outcome.success:
            return self._encode(
                IpqsFailure(
                    message=outcome.message or "",
                    success=False,
                    request_id=outcome.request_id,
                    time=outcome.time_ms // 1000,
                    user_id=user_id,
                )
            )
        device, ip = visit.device, visit.ip
        profile = device.profile
        # IPQS: unique = this device id has not been seen on more than one IP.
        if len(device.ipqs_ips) < 2:
            device.ipqs_ips.add(ip.address)
        return self._encode(
            IpqsSuccess(
                message="Success",
                success=True,
                device_id=device.ipqs_device_id,
                guid=device.ipqs_guid,
                guid_confidence=outcome.guid_confidence,
                fraud_chance=outcome.fraud_chance,
                is_crawler=False,
                connection_type=_CONNECTION.get(ip.network.kind, "Data Center"),
                proxy=outcome.proxy,
                vpn=outcome.vpn,
                tor=outcome.tor,
                recent_abuse=outcome.recent_abuse,
                bot_status=outcome.bot_status,
                isp=_ISP_NAMES.get(ip.network.asn) or ip.network.datacenter or ip.network.name,
                country=ip.city.country,
                city=ip.city.name,
                region=ip.city.subdivision,
                timezone=ip.city.timezone,
                mobile=profile.mobile,
                operating_system=f"{profile.os} {profile.os_version}".strip(),
                browser=f"{profile.browser} {profile.major}",
                brand=profile.brand,
                model=profile.model,
                ip_address=ip.address,
                unique=len(device.ipqs_ips) < 2,
                request_id=outcome.request_id,
                fast_processing=False,
                time=outcome.time_ms // 1000,
                user_id=user_id,
                email=visit.account.email if outcome.with_email else None,
            )
        )
