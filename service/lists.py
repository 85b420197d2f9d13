"""Allow and deny lists (visitor ids, user ids, IPs and CIDR ranges) that short-circuit scoring.

A deny match wins over an allow match: an allow-listed user on a deny-listed IP is blocked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import msgspec

from service.settings import Settings, SettingsError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ListMatch(msgspec.Struct, frozen=True):
    allow: bool
    code: str  # e.g. DENYLIST_IP


def _networks(values: Iterable[str], variable: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in values)
    except ValueError as exc:
        raise SettingsError(f"RISKWIRE_{variable}: {exc}") from None


class AccessLists:
    def __init__(self, settings: Settings) -> None:
        self._visitors = (frozenset(settings.allow_visitors), frozenset(settings.deny_visitors))
        self._users = (frozenset(settings.allow_users), frozenset(settings.deny_users))
        self._ips = (
            _networks(settings.allow_ips, "ALLOW_IPS"),
            _networks(settings.deny_ips, "DENY_IPS"),
        )
        self._empty = not any((*self._visitors, *self._users, *self._ips))

    @property
    def empty(self) -> bool:
        """No list names anyone: ``match`` answers None whatever it is asked."""
        return self._empty

    def match(
        self, visitor_id: str | None, user_id: str | None, ip: str | None
    ) -> ListMatch | None:
        if self._empty:  # the default: no lists, and no IP parsed for nothing
            return None
        address = None
        if ip and any(self._ips):
            try:
                address = ipaddress.ip_address(ip.strip())
            except ValueError:
                address = None
        for allow, code in ((False, "DENYLIST"), (True, "ALLOWLIST")):
            index = 1 if not allow else 0
            if visitor_id is not None and visitor_id in self._visitors[index]:
                return ListMatch(allow, f"{code}_VISITOR")
            if user_id is not None and user_id in self._users[index]:
                return ListMatch(allow, f"{code}_USER")
            if address is not None and any(address in net for net in self._ips[index]):
                return ListMatch(allow, f"{code}_IP")
        return None
