"""Legitimate populations: the shop's real customers, including the ones who look risky.

Each population is a class with a ``name``, a ``label`` and ``actors(world)``: one generator
per person or household, yielding that actor's visits in time order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from functools import partial

from service.simulation import clock, devices, geo, ids
from service.simulation.geo import City, Ip
from service.simulation.visit import Account, Label, Signals, Visit
from service.simulation.world import Actor, Customer, World

Step = tuple[str, str]  # (Segment track event, page path)

LOGIN: Step = ("Logged In", "/login")
SIGNUP: Step = ("Signed Up", "/signup")
CHECKOUT: Step = ("Checkout Started", "/checkout")
ORDER: Step = ("Order Completed", "/checkout/complete")
PRODUCT: Step = ("Product Viewed", "/products")

_VISIT_FLOWS: tuple[tuple[Step, ...], ...] = (
    (LOGIN,),
    (LOGIN, PRODUCT),
    (LOGIN, CHECKOUT),
    (LOGIN, CHECKOUT, ORDER),
    (CHECKOUT, ORDER),
)
_VISIT_WEIGHTS = (22, 13, 25, 25, 15)
BROWSE_SHARE = 0.15  # visits that browse the catalogue: several product pages in minutes


def visit_flow(rng: random.Random) -> tuple[Step, ...]:
    """The pages of one visit: mostly one to three, and one visit in seven or so a browse
    through three to nine product pages, a minute or less apart (``step_gap``), that may end
    at the checkout. The browses are the legitimate bursts: one user, one device, one IP,
    a dozen page loads within the hour."""
    if rng.random() < BROWSE_SHARE:
        pages: tuple[Step, ...] = (LOGIN, *(PRODUCT,) * rng.randint(3, 9))
        if rng.random() < 0.4:
            pages += (CHECKOUT, ORDER) if rng.random() < 0.6 else (CHECKOUT,)
        return pages
    return rng.choices(_VISIT_FLOWS, _VISIT_WEIGHTS)[0]


def step_gap(rng: random.Random, path: str = "") -> int:
    """Time between two pages of one visit; a product page is left sooner (8-90 s)."""
    if path == PRODUCT[1]:
        return 8 * clock.SECOND_MS + int(rng.random() * 82 * clock.SECOND_MS)
    return 20 * clock.SECOND_MS + int(rng.random() * 460 * clock.SECOND_MS)


def regular_confidence(rng: random.Random) -> float:
    """Fingerprint's confidence for a known, ordinary browser: nearly always >= 0.95."""
    return rng.uniform(0.95, 1.0) if rng.random() < 0.95 else rng.uniform(0.8, 0.95)


def elsewhere(rng: random.Random, home: City) -> City:
    """A holiday or business-trip destination: any other home country."""
    while True:
        city = geo.home_city(rng)
        if city.country != home.country:
            return city


class ReturningCustomers:
    """Returning customers [legit].

    One account and one stable device each (a quarter also own a phone they sometimes use),
    first seen by Fingerprint months ago, coming back every few days (log-normal around four)
    in their home country's waking hours, from their home line (which their ISP re-assigns
    now and then) or, on the phone, their carrier. Confidence 0.95-1.0, clean signals — apart
    from the noise real customers make: a work VPN (3 %), travel abroad (1.5 %), incognito
    (3 %), developer tools (1 %), a few privacy-hardened browsers, and now and then (1.2 % of
    visits) a new device Fingerprint has never seen.
    """

    name = "returning_customer"
    label: Label = "legit"

    def actors(self, world: World) -> list[Actor]:
        return [
            Actor(customer.first_visit_ms, partial(self._customer, world, customer))
            for customer in world.customers
        ]

    def _customer(self, world: World, customer: Customer) -> Iterator[Visit]:
        rng = world.rng(self.name, customer.index)
        time = customer.first_visit_ms
        while time < world.end_ms:
            slot = 1 if len(customer.devices) > 1 and rng.random() < 0.3 else 0
            device = customer.devices[slot]
            if rng.random() < 0.012:
                # A new laptop or a reinstalled browser: an unknown device on a known
                # account, exactly what a careful account takeover looks like too.
                profile = devices.phone(rng) if device.profile.mobile else devices.desktop(rng)
                device = devices.new_device(rng, profile, customer.home, time)
                customer.devices[slot] = device
            if rng.random() < 0.03:
                customer.home_ip = geo.residential(rng, customer.home)
            ip: Ip = customer.home_ip
            tz_city = customer.home
            roll = rng.random()
            if roll < 0.03:
                ip = geo.vpn_exit(rng, rng.choice((customer.home.country, None)))
            elif roll < 0.045:
                tz_city = elsewhere(rng, customer.home)
                ip = geo.cellular(rng, tz_city)
            elif device.profile.mobile and rng.random() < 0.5:
                ip = geo.cellular(rng, customer.home)
            incognito = rng.random() < 0.03
            for event, path in visit_flow(rng):
                if time >= world.end_ms:
                    return
                confidence = rng.uniform(0.86, 0.99) if customer.brave else regular_confidence(rng)
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=customer.account,
                    ip=ip,
                    tz_city=tz_city,
                    event=event,
                    path=path,
                    confidence=confidence,
                    incognito=incognito,
                    signals=Signals(
                        privacy_settings=customer.brave,
                        developer_tools=rng.random() < 0.01,
                    ),
                )
                time += step_gap(rng, path)
            time = clock.next_visit(rng, time, customer.mean_gap_days, customer.home.utc_offset_min)


class NewCustomers:
    """New customers [legit].

    Someone arrives for the first time (visitorFound false, firstSeenAt = now), signs up with
    a brand-new account (user ids continue the shop's sequence) and often goes on to check
    out; 45 % come back once to three times within days. Mostly clean; some browse
    incognito (8 %) or behind a VPN (5 %) — the same surface as a promo abuser's first visit.
    """

    name = "new_customer"
    label: Label = "legit"
    per_day = 140

    def actors(self, world: World) -> list[Actor]:
        arrivals = world.rng(self.name, "arrivals")
        actors = []
        for index in range(world.count(self.per_day, True)):
            home = geo.home_city(arrivals)
            time = clock.first_visit(arrivals, world.start_ms, world.end_ms, home.utc_offset_min)
            if time < world.end_ms:
                actors.append(Actor(time, partial(self._newcomer, world, index, home, time)))
        return actors

    def _newcomer(self, world: World, index: int, home: City, time: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        device = devices.new_device(rng, devices.any_device(rng, 0.5), home, time)
        account = Account(ids.email(rng, *ids.person(rng)))
        home_ip = geo.cellular(rng, home) if device.profile.mobile else geo.residential(rng, home)
        incognito = rng.random() < 0.08
        ip = geo.vpn_exit(rng, home.country) if rng.random() < 0.05 else home_ip
        first: tuple[Step, ...] = (SIGNUP, CHECKOUT, ORDER) if rng.random() < 0.45 else (SIGNUP,)
        if first == (SIGNUP,) and rng.random() < 0.3:
            first = (SIGNUP, CHECKOUT)
        returns = rng.randint(1, 3) if rng.random() < 0.45 else 0
        flows = [first, *(visit_flow(rng) for _ in range(returns))]
        for number, flow in enumerate(flows):
            for event, path in flow:
                if time >= world.end_ms:
                    return
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=account,
                    ip=ip,
                    event=event,
                    path=path,
                    confidence=rng.uniform(0.9, 1.0) if number == 0 else regular_confidence(rng),
                    incognito=incognito and number == 0,
                    email_trait=event == "Signed Up",
                )
                time += step_gap(rng, path)
            time = clock.next_visit(rng, time, 2.0, home.utc_offset_min)
            ip = home_ip


class PrivacyUsers:
    """Legitimate VPN / privacy-browser users [legit].

    One account on one device each, but the device hides: most visits leave through a
    commercial VPN (public-VPN method, a datacenter exit, often another country, hence a
    time-zone mismatch) or a privacy relay (relay method, same region), with a fresh exit IP
    each time; many run hardened browsers (privacy settings, lower confidence), some browse
    incognito, a few show tampering from privacy extensions and a few use Tor now and then
    (6 % of them, on about one visit in eight, in Tor Browser: privacy settings too). So
    Tor is evidence, not proof: the shop's legitimate Tor traffic is rare but real.
    They look risky on signals alone; only their one-user-per-device history says otherwise.
    """

    name = "privacy_user"
    label: Label = "legit"
    size = 220

    def actors(self, world: World) -> list[Actor]:
        setup = world.rng(self.name, "accounts")
        return [
            Actor(
                world.start_ms,
                partial(
                    self._user, world, index, world.existing_account(setup, *ids.person(setup))
                ),
            )
            for index in range(world.count(self.size))
        ]

    def _user(self, world: World, index: int, account: Account) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        home = geo.home_city(rng)
        profile = devices.privacy_browser(rng)
        since = world.start_ms - rng.randint(20, 600) * clock.DAY_MS - rng.randrange(clock.DAY_MS)
        last_seen = world.start_ms - rng.randrange(1, 6 * clock.DAY_MS)
        device = devices.new_device(rng, profile, home, since, last_seen)
        relay_user = profile.browser in ("Safari", "Mobile Safari") and rng.random() < 0.7
        hardened = not relay_user and rng.random() < 0.55
        incognito_habit = rng.choice((0.0, 0.05, 0.2, 0.5))
        tor_habit = 0.12 if rng.random() < 0.06 else 0.0
        vpn_habit = rng.uniform(0.7, 0.97)
        home_ip = geo.residential(rng, home)
        time = clock.first_visit(
            rng, world.start_ms, world.start_ms + 3 * clock.DAY_MS, home.utc_offset_min
        )
        while time < world.end_ms:
            if rng.random() < tor_habit:
                ip = geo.tor_exit(rng)
            elif rng.random() < vpn_habit:
                if relay_user:
                    ip = geo.relay_exit(rng, home)
                else:
                    exit_country = home.country if rng.random() < 0.4 else None
                    ip = geo.vpn_exit(rng, exit_country)
            else:
                ip = home_ip
            incognito = rng.random() < incognito_habit
            for event, path in visit_flow(rng):
                if time >= world.end_ms:
                    return
                tampering = rng.random() < 0.04
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=account,
                    ip=ip,
                    event=event,
                    path=path,
                    confidence=rng.uniform(0.82, 0.99) if hardened else regular_confidence(rng),
                    incognito=incognito,
                    signals=Signals(
                        # Tor Browser is what Fingerprint's privacy-settings signal names first.
                        privacy_settings=hardened or ip.tor,
                        tampering=tampering,
                        anomaly_score=round(rng.uniform(0.5, 0.8), 4) if tampering else 0.0,
                        developer_tools=rng.random() < 0.03,
                    ),
                    risk=0.12,
                )
                time += step_gap(rng, path)
            time = clock.next_visit(rng, time, 3.0, home.utc_offset_min)


class Families:
    """Families sharing a device [legit].

    A household's one laptop or tablet, at one home IP, used by two to four members with
    their own accounts (same surname) — each visit by one member, mostly hours or days apart;
    now and then (one visit in eight) another member takes the device straight after, within
    minutes, so a household shows two user ids in an hour, never more. Clean signals, high
    confidence: the legitimate face of "several users per device" that a fraud ring (five
    to twenty user ids an hour) also shows.
    """

    name = "family"
    label: Label = "legit"
    size = 110
    handover_share = 0.12  # visits followed, within minutes, by another member's visit

    def actors(self, world: World) -> list[Actor]:
        setup = world.rng(self.name, "accounts")
        households = []
        for index in range(world.count(self.size)):
            surname = setup.choice(ids.LAST_NAMES)
            members = [
                world.existing_account(setup, setup.choice(ids.FIRST_NAMES), surname)
                for _ in range(setup.choices((2, 3, 4), (4, 4, 2))[0])
            ]
            households.append(
                Actor(world.start_ms, partial(self._household, world, index, members))
            )
        return households

    def _household(self, world: World, index: int, members: Sequence[Account]) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        home = geo.home_city(rng)
        profile = devices.desktop(rng) if rng.random() < 0.7 else devices.phone(rng)
        since = world.start_ms - rng.randint(60, 900) * clock.DAY_MS - rng.randrange(clock.DAY_MS)
        last_seen = world.start_ms - rng.randrange(1, 6 * clock.DAY_MS)
        device = devices.new_device(rng, profile, home, since, last_seen)
        home_ip = geo.residential(rng, home)
        time = clock.first_visit(
            rng, world.start_ms, world.start_ms + 2 * clock.DAY_MS, home.utc_offset_min
        )
        member = rng.choice(members)
        handed_over = False
        while time < world.end_ms:
            for event, path in visit_flow(rng):
                if time >= world.end_ms:
                    return
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=member,
                    ip=home_ip,
                    event=event,
                    path=path,
                    confidence=regular_confidence(rng),
                    incognito=rng.random() < 0.03,
                )
                time += step_gap(rng, path)
            handed_over = not handed_over and rng.random() < self.handover_share
            if handed_over:
                # "Let me check mine too": another member, minutes later, same device.
                member = rng.choice([m for m in members if m is not member])
                time += rng.randint(1, 20) * clock.MINUTE_MS
                continue
            # Otherwise the next visit (anyone's) comes hours later at the earliest.
            member = rng.choice(members)
            later = clock.next_visit(rng, time, 1.6, home.utc_offset_min)
            time = max(later, time + 3 * clock.HOUR_MS)


class SharedNetworks:
    """Coworkers and students behind one office or campus network [legit].

    A workplace, university or library puts everyone behind one NAT address. Its members
    (eight to twenty-five at an office, forty to a hundred and twenty on a campus) are
    ordinary customers — one account and one known device each, clean signals, high
    confidence — who shop every few days, on weekdays mostly from the site (at lunch above
    all), otherwise from home. So one IP shows many unrelated users and devices within the
    hour, each device still one user: the legitimate face of "many users on one IP" that
    credential stuffing and careless rings show too. (Mobile customers share addresses
    the same way behind their carrier's NAT: ``geo.cellular``.)
    """

    name = "shared_network"
    label: Label = "legit"
    sites = 12

    def actors(self, world: World) -> list[Actor]:
        setup = world.rng(self.name, "sites")
        actors = []
        for site in range(world.count(self.sites)):
            city = geo.home_city(setup)
            site_ip = geo.residential(setup, city)
            campus = setup.random() < 0.4
            size = setup.randint(40, 120) if campus else setup.randint(8, 25)
            for member in range(size):
                account = world.existing_account(setup, *ids.person(setup))
                run = partial(self._member, world, site, member, city, site_ip, account)
                actors.append(Actor(world.start_ms, run))
        return actors

    def _member(
        self, world: World, site: int, member: int, city: City, site_ip: Ip, account: Account
    ) -> Iterator[Visit]:
        rng = world.rng(self.name, site, member)
        profile = devices.any_device(rng, 0.45)
        since = world.start_ms - rng.randint(30, 700) * clock.DAY_MS - rng.randrange(clock.DAY_MS)
        last_seen = world.start_ms - rng.randrange(1, 6 * clock.DAY_MS)
        device = devices.new_device(rng, profile, city, since, last_seen)
        home_ip = geo.residential(rng, city)
        mean_gap = rng.uniform(1.5, 5.0)
        offset = city.utc_offset_min * clock.MINUTE_MS
        time = clock.first_visit(
            rng, world.start_ms, world.start_ms + 3 * clock.DAY_MS, city.utc_offset_min
        )
        previous_end = world.start_ms
        while time < world.end_ms:
            ip = home_ip
            local_day = (time + offset) // clock.DAY_MS
            weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
            if weekday < 5 and rng.random() < 0.75:
                # At the site: lunch (11:30-14:00) more often than not, else office hours.
                if rng.random() < 0.6:
                    at = rng.randint(690, 840) * clock.MINUTE_MS
                else:
                    at = rng.randint(540, 1020) * clock.MINUTE_MS
                work = local_day * clock.DAY_MS - offset + at
                if work > previous_end + 30 * clock.MINUTE_MS:
                    time, ip = work, site_ip
            for event, path in visit_flow(rng):
                if time >= world.end_ms:
                    return
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=account,
                    ip=ip,
                    event=event,
                    path=path,
                    confidence=regular_confidence(rng),
                    incognito=rng.random() < 0.03,
                )
                time += step_gap(rng, path)
            previous_end = time
            time = clock.next_visit(rng, time, mean_gap, city.utc_offset_min)
