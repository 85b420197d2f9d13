"""Browsers and the devices that run them, as Fingerprint and IPQS would describe them.

Versions are what was current in autumn 2026 (Chrome ~153, Firefox ~156, Safari 27), except
for automation, which tends to run whatever headless build its framework pinned long ago.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec

from service.simulation import ids
from service.simulation.geo import City

SDK_VERSIONS = ("3.11.10", "3.11.8", "3.12.1")


@dataclass(frozen=True, slots=True)
class Profile:
    browser: str
    major: str
    full: str
    os: str
    os_version: str
    device: str  # Fingerprint's value: "Other" for desktops
    user_agent: str
    mobile: bool
    brand: str  # IPQS's brand / model, "N/A" when unknown
    model: str


def _chrome_full(rng: random.Random, major: int) -> str:
    # Chromium build numbers grow ~68 per milestone from 7339 at M140.
    return f"{major}.0.{7339 + (major - 140) * 68}.{rng.randint(40, 190)}"


def _windows_chrome(rng: random.Random, edge: bool = False) -> Profile:
    major = rng.choice((151, 152, 153, 153, 153))
    base = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    if edge:
        full = f"{major}.0.{3300 + (major - 140) * 40}.{rng.randint(30, 120)}"
        ua = base + f"Chrome/{major}.0.0.0 Safari/537.36 Edg/{full}"
        return Profile("Edge", str(major), full, "Windows", "10", "Other", ua, False, "N/A", "N/A")
    ua = base + f"Chrome/{major}.0.0.0 Safari/537.36"
    os_version = rng.choice(("10", "11", "11"))
    return Profile(
        "Chrome", str(major), _chrome_full(rng, major), "Windows", os_version, "Other", ua, False,
        "N/A", "N/A",
    )  # fmt: skip


def _mac_chrome(rng: random.Random) -> Profile:
    major = rng.choice((152, 153, 153))
    ua = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )
    return Profile(
        "Chrome", str(major), _chrome_full(rng, major), "Mac OS X", "10.15.7", "Other", ua, False,
        "Apple", "Mac",
    )  # fmt: skip


def _mac_safari(rng: random.Random) -> Profile:
    minor = rng.choice(("0", "0.1", "1"))
    ua = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        f"Version/27.{minor.split('.')[0]} Safari/605.1.15"
    )
    return Profile(
        "Safari", "27", f"27.{minor}", "Mac OS X", "10.15.7", "Other", ua, False, "Apple", "Mac"
    )


def _firefox(rng: random.Random, linux: bool = False) -> Profile:
    major = rng.choice((155, 156, 156))
    platform = "X11; Linux x86_64" if linux else "Windows NT 10.0; Win64; x64"
    ua = f"Mozilla/5.0 ({platform}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0"
    os_name, os_version = ("Linux", "") if linux else ("Windows", "10")
    return Profile(
        "Firefox", str(major), f"{major}.0.{rng.randint(0, 2)}", os_name, os_version, "Other", ua,
        False, "N/A", "N/A",
    )  # fmt: skip


def _iphone(rng: random.Random) -> Profile:
    # Since iOS 26 Safari freezes the OS version in its user agent at 18_6.
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/27.0 Mobile/15E148 Safari/604.1"
    )
    os_version = rng.choice(("27.0", "27.0.1", "26.6"))
    return Profile(
        "Mobile Safari", "27", "27.0", "iOS", os_version, "iPhone", ua, True, "Apple", "iPhone"
    )


def _android(rng: random.Random) -> Profile:
    major = rng.choice((152, 153, 153))
    model = rng.choice(("SM-S931B", "SM-A556B", "Pixel 9", "Pixel 8a", "moto g85 5G"))
    brand = "Google" if model.startswith("Pixel") else "Motorola" if "moto" in model else "Samsung"
    ua = (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Mobile Safari/537.36"
    )
    device = f"{brand} {model}" if brand != "Google" else model
    return Profile(
        "Chrome Mobile", str(major), _chrome_full(rng, major), "Android", rng.choice(("15", "16")),
        device, ua, True, brand, model,
    )  # fmt: skip


def desktop(rng: random.Random) -> Profile:
    pick = rng.random()
    if pick < 0.45:
        return _windows_chrome(rng)
    if pick < 0.58:
        return _windows_chrome(rng, edge=True)
    if pick < 0.72:
        return _mac_safari(rng)
    if pick < 0.87:
        return _mac_chrome(rng)
    return _firefox(rng)


def phone(rng: random.Random) -> Profile:
    return _iphone(rng) if rng.random() < 0.55 else _android(rng)


def any_device(rng: random.Random, mobile_share: float = 0.45) -> Profile:
    return phone(rng) if rng.random() < mobile_share else desktop(rng)


def privacy_browser(rng: random.Random) -> Profile:
    """Brave reports itself as Chrome; hardened Firefox on Linux; Safari for relay users."""
    pick = rng.random()
    if pick < 0.35:
        return _windows_chrome(rng)
    if pick < 0.6:
        return _firefox(rng, linux=rng.random() < 0.5)
    if pick < 0.8:
        return _mac_safari(rng)
    return _iphone(rng)


def automation(rng: random.Random) -> tuple[Profile, str]:
    """A browser driven by a script, with the bot type Fingerprint reports for it."""
    kind = rng.choices(("headlessChrome", "puppeteer", "playwright", "selenium"), (3, 3, 2, 3))[0]
    major = rng.randint(118, 141)
    if kind == "selenium":
        profile = _windows_chrome(rng)
        return Profile(
            "Chrome", str(major), _chrome_full(rng, major), profile.os, profile.os_version,
            "Other", profile.user_agent.replace(f"Chrome/{profile.major}", f"Chrome/{major}"),
            False, "N/A", "N/A",
        ), kind  # fmt: skip
    name = "HeadlessChrome" if kind != "playwright" or rng.random() < 0.5 else "Chrome"
    ua = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"{name}/{major}.0.0.0 Safari/537.36"
    )
    return Profile(
        name, str(major), _chrome_full(rng, major), "Linux", "", "Other", ua, False, "N/A", "N/A"
    ), kind


@dataclass(slots=True, eq=False)
class Device:
    """One browser on one machine: a Fingerprint visitorId and an IPQS device id / guid.

    Mutable on purpose: ``touch`` records each sighting so the next event can report the
    previous one (``lastSeenAt``) and whether the visitor was already known. A device is used
    by exactly one actor, so its sightings arrive in time order.
    """

    visitor_id: str
    profile: Profile
    home: City  # where its clock is set: the browser's time zone
    first_seen_ms: int
    first_seen_global_ms: int
    ipqs_device_id: str
    ipqs_guid: str
    sdk_version: str
    last_seen_ms: int | None = None
    ipqs_ips: set[str] = field(default_factory=set)
    wire_cache: dict[str, msgspec.Raw] = field(default_factory=dict)  # encoded fragments

    def touch(self, time_ms: int) -> int | None:
        """Record a sighting; returns the previous one (None: Fingerprint never saw it)."""
        previous = self.last_seen_ms
        self.last_seen_ms = time_ms
        return previous


def new_device(
    rng: random.Random,
    profile: Profile,
    home: City,
    first_seen_ms: int,
    last_seen_ms: int | None = None,
) -> Device:
    """A device first seen at ``first_seen_ms``; pass ``last_seen_ms`` for one seen since."""
    # Fingerprint's global first sighting can precede this subscription's (other sites).
    global_ms = first_seen_ms - (rng.randrange(400 * 86_400_000) if rng.random() < 0.6 else 0)
    return Device(
        visitor_id=ids.visitor_id(rng),
        profile=profile,
        home=home,
        first_seen_ms=first_seen_ms,
        first_seen_global_ms=max(global_ms, 1_500_000_000_000),
        ipqs_device_id=ids.sha256_hex(rng),
        ipqs_guid=ids.sha256_hex(rng),
        sdk_version=rng.choice(SDK_VERSIONS),
        last_seen_ms=last_seen_ms,
    )
