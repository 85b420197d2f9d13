"""The shared setting of one run: the time window, the dials, the RNGs and the customer base.

Each actor (a customer, a household, a bot campaign...) draws from its own ``random.Random``
seeded by (seed, population, index), so actors never consume each other's randomness:
adding a population or resizing one leaves every other actor's story unchanged.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from service.simulation import clock, devices, geo, ids
from service.simulation.devices import Device
from service.simulation.geo import City, Ip
from service.simulation.visit import SITE, Account, Label, Signals, Visit, draw_ipqs

# Existing accounts were numbered before the simulation; sign-ups during it continue above.
_EXISTING_IDS = (100_000, 2_999_999)
FIRST_NEW_USER_ID = 3_000_001
CUSTOMERS = 1400  # returning customers at scale 1.0

_ORDER_EVENTS = ("Checkout Started", "Order Completed", "Payment Info Entered")
_REFERRERS = (
    "https://www.google.com/", "", "", "https://www.bing.com/", "https://l.facebook.com/",
    "https://duckduckgo.com/", "https://t.co/", SITE + "/",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Actor:
    """One person's or operation's story: ``run()`` yields its visits in time order, none
    before ``start_ms``. Nothing of it exists before it is started, so a run holds only the
    actors active at once, however many days it spans."""

    start_ms: int
    run: Callable[[], Iterator[Visit]]


@dataclass(slots=True, eq=False)
class Customer:
    """A long-standing account holder; the ATO population steals from this same roster."""

    index: int
    account: Account
    home: City
    home_ip: Ip
    devices: list[Device]
    mean_gap_days: float
    first_visit_ms: int
    brave: bool  # runs a privacy-hardened browser: legit, yet a risk signal


@dataclass(slots=True, eq=False)
class World:
    seed: int
    start_ms: int
    end_ms: int
    scale: float
    v4_share: float
    ipqs_share: float
    customers: tuple[Customer, ...] = ()
    _taken_ids: set[int] = field(default_factory=set)
    _id_rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(
        cls,
        seed: int,
        start_ms: int,
        end_ms: int,
        scale: float,
        v4_share: float,
        ipqs_share: float,
    ) -> World:
        world = cls(seed, start_ms, end_ms, scale, v4_share, ipqs_share)
        world._id_rng = world.rng("user-ids")
        roster = world.rng("customers")
        world.customers = tuple(
            world._customer(roster, index) for index in range(world.count(CUSTOMERS))
        )
        return world

    @property
    def days(self) -> float:
        return (self.end_ms - self.start_ms) / clock.DAY_MS

    def rng(self, *parts: object) -> random.Random:
        # String seeds go through SHA-512 in CPython: stable across runs and processes,
        # unlike hash(), which PYTHONHASHSEED salts.
        return random.Random(":".join(("riskwire-sim", str(self.seed), *map(str, parts))))

    def count(self, base: float, per_day: bool = False) -> int:
        """A population size at this run's scale; at least one, so every population shows."""
        size = base * self.scale * (self.days if per_day else 1.0)
        return max(1, math.floor(size + 0.5))

    def intensity(self, base: float, per_day: bool = False) -> float:
        """How much of one actor a population's expected size covers (at most 1).

        ``count`` keeps at least one actor of every population; in small runs that actor
        scales its volume by this, so the one forced fraud campaign does not swamp a
        handful of customers.
        """
        return min(1.0, base * self.scale * (self.days if per_day else 1.0))

    def existing_account(self, rng: random.Random, first: str, last: str) -> Account:
        """An account that predates the simulation, with a user id no one else holds."""
        while True:
            number = self._id_rng.randint(*_EXISTING_IDS)
            if number not in self._taken_ids:
                self._taken_ids.add(number)
                return Account(ids.email(rng, first, last), f"u-{number}")

    def _customer(self, rng: random.Random, index: int) -> Customer:
        first, last = ids.person(rng)
        home = geo.home_city(rng)
        months_ago = (
            self.start_ms - rng.randint(30, 700) * clock.DAY_MS - rng.randrange(clock.DAY_MS)
        )
        mean_gap = min(20.0, max(0.7, rng.lognormvariate(math.log(4.0), 0.6)))
        primary = devices.any_device(rng, mobile_share=0.45)
        owned = [self._known_device(rng, primary, home, months_ago, mean_gap)]
        if not primary.mobile and rng.random() < 0.3:
            phone_since = (
                self.start_ms - rng.randint(5, 400) * clock.DAY_MS - rng.randrange(clock.DAY_MS)
            )
            owned.append(self._known_device(rng, devices.phone(rng), home, phone_since, mean_gap))
        gap_ms = int(rng.expovariate(1.0 / mean_gap) * clock.DAY_MS)
        first_visit = clock.daytime(rng, self.start_ms + gap_ms, home.utc_offset_min)
        if first_visit < self.start_ms:
            first_visit += clock.DAY_MS
        return Customer(
            index=index,
            account=self.existing_account(rng, first, last),
            home=home,
            home_ip=geo.residential(rng, home),
            devices=owned,
            mean_gap_days=mean_gap,
            first_visit_ms=first_visit,
            brave=rng.random() < 0.04,
        )

    def _known_device(
        self, rng: random.Random, profile: devices.Profile, home: City, since: int, gap: float
    ) -> Device:
        """A device Fingerprint already knows: first seen ``since``, last seen before start."""
        last = self.start_ms - int(rng.uniform(0.2, 2 * gap) * clock.DAY_MS)
        return devices.new_device(rng, profile, home, since, max(since, last))

    def visit(
        self,
        rng: random.Random,
        *,
        time_ms: int,
        population: str,
        label: Label,
        device: Device,
        account: Account,
        ip: Ip,
        event: str,
        path: str,
        confidence: float,
        incognito: bool = False,
        signals: Signals | None = None,
        tz_city: City | None = None,
        risk: float = 0.0,
        email_trait: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> Visit:
        """One Fingerprint event (and maybe its IPQS twin), drawn with the actor's RNG."""
        signals = signals or Signals()
        if not signals.tampering:
            # Every browser has some anomaly score; tampering is what crosses the threshold.
            signals.anomaly_score = int(rng.random() * 2500) / 10_000
        previous = device.touch(time_ms)
        if previous is None:
            # A device's first sighting is its first-seen time, whatever the actor planned.
            device.first_seen_ms = time_ms
        v4 = rng.random() < self.v4_share
        request_id = ids.v4_event_id(rng, time_ms) if v4 else ids.v3_request_id(rng)
        ipqs = None
        if rng.random() < self.ipqs_share:
            ipqs = draw_ipqs(rng, ids.ipqs_request_id(rng), time_ms, ip, signals, incognito, risk)
        if event in _ORDER_EVENTS:
            referrer = SITE + "/cart"
        else:
            referrer = _REFERRERS[int(rng.random() * len(_REFERRERS))]
        return Visit(
            time_ms=time_ms,
            population=population,
            label=label,
            device=device,
            account=account,
            ip=ip,
            tz_city=tz_city or device.home,
            event=event,
            path=path,
            referrer=referrer,
            incognito=incognito,
            confidence=round(min(1.0, max(0.0, confidence)), 2),
            previous_seen_ms=previous,
            signals=signals,
            format="v4" if v4 else "v3",
            request_id=request_id,
            ipqs=ipqs,
            email_trait=email_trait,
            extra=extra,
        )
