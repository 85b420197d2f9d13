"""Fraudulent populations, each with a careful minority whose signals look clean.

Same contract as ``legit.py``: ``actors(world)`` returns one time-ordered generator of visits
per campaign, ring, takeover or abuser.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial

from service.simulation import clock, devices, geo, ids
from service.simulation.devices import Device
from service.simulation.geo import City, Ip
from service.simulation.legit import (
    CHECKOUT,
    LOGIN,
    ORDER,
    SIGNUP,
    Step,
    elsewhere,
    regular_confidence,
    step_gap,
)
from service.simulation.visit import Account, Label, Signals, Visit
from service.simulation.world import Actor, Customer, World

ACCOUNT_UPDATE: Step = ("Account Updated", "/account/security")
COUPON: Step = ("Coupon Applied", "/cart")
PAYMENT: Step = ("Payment Info Entered", "/checkout/payment")
COUPONS = ("WELCOME20", "FIRSTORDER", "NEWUSER15", "FREESHIP")

# How often Fingerprint recognises a commercial anti-detect build, and names it as one.
ANTI_DETECT_FLAGGED = 0.7
ANTI_DETECT_NAMED = 0.8

Tool = tuple[bool, bool]  # what Fingerprint sees of a browser: (tampering, anti_detect)
PLAIN: Tool = (False, False)


def anti_detect_profile(rng: random.Random) -> Tool:
    """An anti-detect browser profile (Multilogin, GoLogin, Dolphin Anty, AdsPower …) as
    Fingerprint sees it, fixed per profile: the same build shows the same way on every page.

    These are the human fraudster's tool — they spoof a plausible device (and the exit's
    time zone) for each account, and drive nothing: no automation signal. Fingerprint
    recognises most builds: 70 % show tampering, and 80 % of those are named an anti-detect
    browser; the rest pass as ordinary browsers.
    """
    tampering = rng.random() < ANTI_DETECT_FLAGGED
    return tampering, tampering and rng.random() < ANTI_DETECT_NAMED


def tool_signals(rng: random.Random, tool: Tool, tor_browser: bool = False) -> Signals:
    """Signals of one page load by a person (no bot) on ``tool``; Tor Browser reports itself
    as a privacy-focused browser (Fingerprint's privacy-settings signal names Tor)."""
    tampering, named = tool
    return Signals(
        tampering=tampering,
        anomaly_score=round(rng.uniform(0.55, 0.95), 4) if tampering else 0.0,
        anti_detect=named,
        privacy_settings=tor_browser,
    )


def _victim_actors(
    world: World,
    name: str,
    per_day: float,
    attack: Callable[[World, int, Customer, int], Iterator[Visit]],
) -> list[Actor]:
    """One attack per sampled returning customer, at a random time after the customer's own
    first visit (the account is theirs first)."""
    plan = world.rng(name, "victims")
    eligible = [c for c in world.customers if c.first_visit_ms < world.end_ms - clock.HOUR_MS]
    victims = plan.sample(eligible, min(len(eligible), world.count(per_day, True)))
    actors = []
    for index, victim in enumerate(victims):
        earliest = victim.first_visit_ms + clock.HOUR_MS
        time = plan.randint(earliest, max(earliest, world.end_ms - clock.HOUR_MS))
        actors.append(Actor(time, partial(attack, world, index, victim, time)))
    return actors


class CredentialStuffing:
    """Credential-stuffing bots from datacenter IPs [fraud].

    A campaign replays a leaked combo list against the login page: one to three bursts of
    25-120 attempts, seconds apart, each attempt a different user id (mostly accounts that
    may not exist here, 5 % real customers'). One to four automated browsers (Fingerprint:
    bot "bad", headless Chrome / Puppeteer / Playwright / Selenium, low confidence) rotate
    over a few addresses of one or two hosting ASNs, often blocklisted as attack sources;
    some run in VMs, some tamper. One in six is stealthy: patched browsers that pass bot
    detection and residential proxies, so only the reuse pattern gives them away.
    """

    name = "credential_stuffing"
    label: Label = "fraud"
    per_day = 0.45

    def actors(self, world: World) -> list[Actor]:
        plan = world.rng(self.name, "plan")
        span = max(1, world.end_ms - world.start_ms - clock.HOUR_MS)
        return [
            Actor(start, partial(self._campaign, world, index, start))
            for index, start in enumerate(
                world.start_ms + plan.randrange(span)
                for _ in range(world.count(self.per_day, True))
            )
        ]

    def _campaign(self, world: World, index: int, time: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        stealth = index % 6 == 5  # one campaign in six
        operator = geo.fraud_city(rng)
        bots: list[tuple[Device, str]] = []
        for _ in range(rng.randint(1, 4)):
            profile, bot_type = devices.automation(rng)
            if stealth:
                profile = devices.desktop(rng)
            bots.append((devices.new_device(rng, profile, operator, time), bot_type))
        market = rng.choice(("US", "US", "GB", "DE", "FR", "CA"))
        if stealth:
            pool = [
                geo.residential_proxy(rng, market, detected=rng.random() < 0.5)
                for _ in range(rng.randint(15, 60))
            ]
        else:
            hosts = rng.sample(geo.BOT_HOSTS, rng.randint(1, 2))
            listed = rng.random() < 0.6
            pool = [
                geo.hosted(
                    rng,
                    rng.choice(hosts),
                    attack_source=listed and rng.random() < 0.7,
                    email_spam=listed and rng.random() < 0.3,
                )
                for _ in range(rng.randint(3, 20))
            ]
        tampering = not stealth and rng.random() < 0.2
        vm = not stealth and rng.random() < 0.2
        incognito = rng.random() < 0.3
        volume = world.intensity(self.per_day, per_day=True)
        for _ in range(rng.randint(1, 3)):
            mean_gap_ms = rng.uniform(2, 12) * clock.SECOND_MS
            for _ in range(max(8, round(rng.randint(25, 120) * volume))):
                if time >= world.end_ms:
                    return
                device, bot_type = rng.choice(bots)
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=self._target(rng, world),
                    ip=rng.choice(pool),
                    event=LOGIN[0],
                    path=LOGIN[1],
                    confidence=rng.uniform(0.6, 0.95) if stealth else rng.uniform(0.25, 0.7),
                    incognito=incognito,
                    signals=Signals(
                        bot="notDetected" if stealth else "bad",
                        bot_type=None if stealth else bot_type,
                        tampering=tampering,
                        anomaly_score=round(rng.uniform(0.6, 0.95), 4) if tampering else 0.0,
                        virtual_machine=vm,
                    ),
                    risk=0.5 if stealth else 0.9,
                    email_trait=True,
                )
                time += 300 + int(rng.expovariate(1.0 / mean_gap_ms))
            time += rng.randint(20, 120) * clock.MINUTE_MS

    @staticmethod
    def _target(rng: random.Random, world: World) -> Account:
        if rng.random() < 0.05:
            return rng.choice(world.customers).account
        # Combo lists come from other sites' breaches: ids in this shop's range, which may
        # or may not exist here.
        first, last = ids.person(rng)
        return Account(ids.email(rng, first, last), f"u-{rng.randint(100_000, 2_999_999)}")


class FraudRings:
    """Fraud rings cycling user ids on a few devices [fraud].

    A ring works from two to five devices on a few (mostly consecutive) days. Each working
    day, each device logs into 5-20 accounts of the ring's pool (sign-ups for fresh ones,
    alias or throwaway e-mails) within an hour or two, applies coupons, enters payment
    details and checks out. Anti-detect browsers (tampering, spoofed time zone) and virtual
    machines on most devices. The accounts go out through residential proxies (or hosting
    IPs) in several countries, so one device shows several countries; the proxy product
    decides how the address moves: rotating exits give each account a fresh one, sticky
    sessions keep one for two to six accounts. A third of the devices are plain laptops,
    most of them worked in earlier campaigns (Fingerprint has known them for weeks), that
    use the ring's own line more often than not: clean signals, caught only by reuse.
    Either way the device is the constant and the addresses are not: users per device is
    the ring's mark, users per IP only sometimes. IPQS's network knows some rings' devices
    and lines from abuse at other merchants, however clean their browsers look.
    """

    name = "fraud_ring"
    label: Label = "fraud"
    per_day = 0.3
    markets = ("US", "GB", "DE", "FR", "CA", "NL", "ES", "IT", "AU")

    def actors(self, world: World) -> list[Actor]:
        plan = world.rng(self.name, "plan")
        total_days = max(1, int(world.days))
        actors = []
        for index in range(world.count(self.per_day, True)):
            first_day = plan.randrange(max(1, total_days - 1))
            # The ring's local working day can begin before that UTC midnight.
            start = max(world.start_ms, world.start_ms + (first_day - 1) * clock.DAY_MS)
            actors.append(Actor(start, partial(self._ring, world, index, first_day)))
        return actors

    def _ring(self, world: World, index: int, first_day: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        base = geo.fraud_city(rng)
        first, last = ids.person(rng)
        pool = [Account(ids.alias_email(rng, first + last, n)) for n in range(rng.randint(25, 80))]
        total_days = max(1, int(world.days))
        span = range(first_day, min(total_days, first_day + 8))
        volume = world.intensity(self.per_day, per_day=True)
        days_worked = max(1, round(rng.randint(2, 5) * volume))
        work_days = sorted(rng.sample(span, min(len(span), days_worked)))
        kinds = [rng.choices(("antidetect", "vm", "plain"), (40, 25, 35))[0] for _ in range(5)]
        start = world.start_ms + first_day * clock.DAY_MS
        ring_devices = [
            (self._device(rng, base, start, kind), kind)
            for kind in kinds[: max(1, round(rng.randint(2, 5) * volume))]
        ]
        # The ring's own line (one per plain laptop) and what IPQS's network knows of each device.
        lines = [geo.residential(rng, base) for _ in ring_devices]
        known = [rng.random() < 0.5 for _ in ring_devices]
        used: set[Account] = set()
        done = 0  # end of the previous working day, which can run past midnight
        for day in work_days:
            day_ms = world.start_ms + day * clock.DAY_MS
            # The devices work in parallel; collect the day, then hand it out in time order.
            batch: list[Visit] = []
            shares = [rng.randint(5, 20) for _ in ring_devices]
            while len(pool) < sum(shares):
                # Short of mule accounts: the ring registers more.
                pool.append(Account(ids.alias_email(rng, first + last, len(pool))))
            # No account on two devices the same day, so a sign-up always precedes its logins.
            todays = rng.sample(pool, sum(shares))
            for number, ((device, kind), share) in enumerate(
                zip(ring_devices, shares, strict=True)
            ):
                time = max(clock.daytime(rng, day_ms, base.utc_offset_min), done, world.start_ms)
                countries = rng.sample(self.markets, rng.randint(2, 4))
                accounts, todays = todays[:share], todays[share:]
                sticky = rng.random() < 0.4  # today's proxy product keeps an exit a while
                ip, keep = lines[number], 0
                risk = (
                    0.8 if known[number] else {"antidetect": 0.8, "vm": 0.75, "plain": 0.45}[kind]
                )
                for account in accounts:
                    if keep == 0:
                        ip = self._exit(rng, kind, lines[number], countries)
                        keep = rng.randint(2, 6) if sticky and ip is not lines[number] else 1
                    keep -= 1
                    time = self._account(rng, world, batch, time, device, kind, account,
                                         base, ip, risk, used)  # fmt: skip
                    time += rng.randint(1, 6) * clock.MINUTE_MS
            batch.sort(key=lambda visit: visit.time_ms)
            done = batch[-1].time_ms + clock.HOUR_MS
            yield from (visit for visit in batch if visit.time_ms < world.end_ms)

    def _account(
        self,
        rng: random.Random,
        world: World,
        batch: list[Visit],
        time: int,
        device: Device,
        kind: str,
        account: Account,
        base: City,
        ip: Ip,
        risk: float,
        used: set[Account],
    ) -> int:
        steps: list[Step] = [LOGIN if account in used else SIGNUP]
        used.add(account)
        if rng.random() < 0.3:
            steps.append(COUPON)
        steps.append(PAYMENT if rng.random() < 0.5 else CHECKOUT)
        if rng.random() < 0.4:
            steps.append(ORDER)
        incognito = rng.random() < 0.15
        for event, path in steps:
            signals = Signals(developer_tools=kind == "plain" and rng.random() < 0.1)
            if kind == "antidetect":
                signals.anti_detect = rng.random() < 0.5
                signals.tampering = signals.anti_detect or rng.random() < 0.3
                if signals.tampering:
                    signals.anomaly_score = round(rng.uniform(0.55, 0.95), 4)
                signals.location_spoofing = rng.random() < 0.1
            elif kind == "vm":
                signals.virtual_machine = rng.random() < 0.85
            confidence = {
                "antidetect": rng.uniform(0.4, 0.85),
                "vm": rng.uniform(0.6, 0.9),
                "plain": rng.uniform(0.88, 1.0),
            }[kind]
            batch.append(
                world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=account,
                    ip=ip,
                    # Anti-detect browsers report the proxy's time zone, not the operator's.
                    tz_city=ip.city if kind == "antidetect" else base,
                    event=event,
                    path=path,
                    confidence=confidence,
                    incognito=incognito,
                    signals=signals,
                    risk=risk,
                    email_trait=event == "Signed Up",
                    extra={"coupon": rng.choice(COUPONS)} if (event, path) == COUPON else None,
                )
            )
            time += rng.randint(15, 180) * clock.SECOND_MS
        return time

    @staticmethod
    def _device(rng: random.Random, base: City, start: int, kind: str) -> Device:
        if kind == "plain" and rng.random() < 0.7:
            # The ring's own laptop, worked in earlier campaigns: Fingerprint knows it.
            since = start - rng.randint(20, 300) * clock.DAY_MS
            last = start - rng.randint(2, 15) * clock.DAY_MS
            return devices.new_device(rng, devices.desktop(rng), base, since, max(since, last))
        # Anti-detect profiles and fresh VMs are new to Fingerprint.
        return devices.new_device(rng, devices.desktop(rng), base, start)

    @staticmethod
    def _exit(rng: random.Random, kind: str, line: Ip, countries: list[str]) -> Ip:
        if kind == "plain" and rng.random() < 0.6:
            return line
        if rng.random() < 0.15:
            return geo.hosted(rng, rng.choice(geo.BOT_HOSTS))
        return geo.residential_proxy(rng, rng.choice(countries), detected=rng.random() < 0.55)


class AccountTakeover:
    """Account takeover from new devices [fraud].

    A returning customer's own account (the very user id from the returning population),
    after that customer's first visit, suddenly used from a device Fingerprint has never
    seen, operated from another country: through a VPN or a residential proxy placed in the
    victim's country (the browser's time zone still gives it away), Tor, or directly. The
    attacker logs in, often changes the account's e-mail or password, then checks out;
    a third come back the next day. Two in five first cycle through one to three other
    new browsers or anti-detect profiles (each a new visitor id) within minutes — retrying
    after a challenge, or working a checker's profiles — so the account shows several new
    devices within the hour. Some are careful: a residential proxy in the victim's own
    city and a matching time zone, so the new device is the only tell to Fingerprint;
    IPQS, which knows many proxy pools, often sees the exit for what it is.

    A person does all this, not a script: no bot signal. One in ten works in Tor Browser
    (Tor exit, and Fingerprint's privacy-settings signal, which names Tor). Two in five of
    the others work in an anti-detect browser, the takeover operator's standard tool (a
    fresh, plausible device per victim, its time zone set to the exit's): Fingerprint
    flags most of those builds as tampering (``anti_detect_profile``), the rest pass.
    """

    name = "account_takeover"
    label: Label = "fraud"
    per_day = 4.0
    antidetect_share = 0.4  # of the takeovers not on Tor

    def actors(self, world: World) -> list[Actor]:
        return _victim_actors(world, self.name, self.per_day, self._takeover)

    def _takeover(self, world: World, index: int, victim: Customer, time: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        attacker = geo.fraud_city(rng) if rng.random() < 0.7 else elsewhere(rng, victim.home)
        if attacker.country == victim.home.country:
            attacker = elsewhere(rng, victim.home)
        style = rng.choices(("vpn", "proxy", "tor", "direct", "careful"), (35, 25, 10, 15, 15))[0]
        careful = style == "careful"
        tor = style == "tor"  # in Tor Browser
        antidetect = not tor and rng.random() < self.antidetect_share
        tool = anti_detect_profile(rng) if antidetect else PLAIN
        profile = devices.desktop(rng) if rng.random() < 0.75 else devices.phone(rng)
        device = devices.new_device(rng, profile, attacker, time)
        tries = rng.randint(1, 3) if rng.random() < 0.4 else 0
        risk = 0.3 if careful else 0.7
        for session in range(2 if rng.random() < 0.3 else 1):
            ip = self._route(rng, style, victim, attacker)
            # An anti-detect profile takes the exit's time zone; a careful one the victim's.
            tz_city = victim.home if careful else ip.city if antidetect else attacker
            incognito = not careful and rng.random() < 0.35
            for _ in range(tries if session == 0 else 0):
                if time >= world.end_ms:
                    return
                other = devices.new_device(rng, devices.desktop(rng), attacker, time)
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=other,
                    account=victim.account,
                    ip=ip,
                    tz_city=tz_city,
                    event=LOGIN[0],
                    path=LOGIN[1],
                    confidence=rng.uniform(0.6, 0.97),
                    incognito=incognito,
                    signals=tool_signals(rng, tool, tor_browser=tor),
                    risk=risk,
                )
                time += rng.randint(1, 8) * clock.MINUTE_MS
            steps: list[Step] = [LOGIN]
            if rng.random() < 0.6:
                steps.append(ACCOUNT_UPDATE)
            if rng.random() < 0.7:
                steps.append(CHECKOUT)
                if rng.random() < 0.5:
                    steps.append(ORDER)
            for event, path in steps:
                if time >= world.end_ms:
                    return
                signals = tool_signals(rng, tool, tor_browser=tor)
                signals.developer_tools = not careful and rng.random() < 0.05
                yield world.visit(
                    rng,
                    time_ms=time,
                    population=self.name,
                    label=self.label,
                    device=device,
                    account=victim.account,
                    ip=ip,
                    tz_city=tz_city,
                    event=event,
                    path=path,
                    confidence=rng.uniform(0.85, 1.0) if careful else rng.uniform(0.6, 0.97),
                    incognito=incognito,
                    signals=signals,
                    risk=risk,
                    email_trait=(event, path) == ACCOUNT_UPDATE,
                )
                time += rng.randint(30, 600) * clock.SECOND_MS
            if session == 0:
                time = clock.next_visit(rng, time, 1.0, attacker.utc_offset_min)

    @staticmethod
    def _route(rng: random.Random, style: str, victim: Customer, attacker: City) -> Ip:
        country = victim.home.country
        if style == "vpn":
            return geo.vpn_exit(rng, country if rng.random() < 0.5 else None)
        if style == "proxy":
            return geo.residential_proxy(rng, country, detected=rng.random() < 0.5)
        if style == "tor":
            return geo.tor_exit(rng)
        if style == "careful":
            return geo.residential_proxy_in(rng, victim.home, detected=False)
        return geo.residential(rng, attacker)


class HijackedSessions:
    """Automated checkouts on hijacked sessions [fraud].

    Malware or a remote-access tool drives a returning customer's own browser (or replays its
    session), so Fingerprint sees the customer's known device: found, confident, months old,
    the customer's one user id, a human pace. The automation shows only in the browser — a
    bad bot (headless Chrome, Selenium), tampering or an anti-detect build, sometimes a
    virtual machine or open developer tools — and the traffic often leaves through Tor or a
    proxy. The reuse counts look exactly like the customer's: only the signals tell. A
    quarter drive the browser by hand over a remote-access tool: no automation shows at
    all, and only the exit (Tor, or a residential proxy IPQS may know) gives them away.
    """

    name = "hijacked_session"
    label: Label = "fraud"
    per_day = 3.0

    def actors(self, world: World) -> list[Actor]:
        return _victim_actors(world, self.name, self.per_day, self._hijack)

    def _hijack(self, world: World, index: int, victim: Customer, time: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        device = victim.devices[0]
        exit_ = rng.choices(("tor", "proxy", "home"), (40, 30, 30))[0]
        if exit_ == "tor":
            ip = geo.tor_exit(rng)
        elif exit_ == "proxy":
            ip = geo.residential_proxy(rng, victim.home.country, detected=rng.random() < 0.6)
        else:
            ip = victim.home_ip
        _, bot_type = devices.automation(rng)
        tampering = rng.random() < 0.6
        signals = Signals(
            bot="bad" if rng.random() < 0.85 else "notDetected",
            bot_type=bot_type,
            tampering=tampering,
            anomaly_score=round(rng.uniform(0.6, 0.95), 4) if tampering else 0.0,
            anti_detect=rng.random() < 0.3,
            virtual_machine=rng.random() < 0.25,
            developer_tools=rng.random() < 0.2,
        )
        if rng.random() < 0.25:
            signals = Signals()  # a remote-access tool: a human hand on the real browser
        for event, path in (LOGIN, CHECKOUT, ORDER)[: rng.randint(1, 3)]:
            if time >= world.end_ms:
                return
            yield world.visit(
                rng,
                time_ms=time,
                population=self.name,
                label=self.label,
                device=device,
                account=victim.account,
                ip=ip,
                tz_city=victim.home,
                event=event,
                path=path,
                confidence=rng.uniform(0.9, 1.0),
                signals=signals,
                risk=0.7,
            )
            time += rng.randint(40, 400) * clock.SECOND_MS


class PromoAbusers:
    """Incognito promo abusers [fraud].

    A local bargain hunter farming the new-customer coupon: over a day or two, from one to
    three of their own devices (often already known to Fingerprint), they sign up 8-35 new
    accounts with alias or throwaway e-mails, apply the coupon and check out — in private
    windows (incognito) most of the time, hoping that resets their identity, and a third
    also hop between VPN exits. A fifth are careful (no incognito, no VPN): one device with
    many fresh accounts is all they show to Fingerprint. IPQS's network has seen three in
    ten of them (careful or not) farming other shops' coupons. Of the careless who do not
    hop VPNs, about one in seven resets with Tor Browser's "New Identity" (fresh storage,
    fresh Tor exit: a new visitor to Fingerprint, Tor and privacy settings) and one in five
    of the rest farms with a multi-accounting (anti-detect) browser instead of their own
    devices (a fresh profile, a new visitor, each time; Fingerprint flags most such builds
    as tampering, ``anti_detect_profile``); either every one to three sign-ups, by hand:
    no bot signal.
    """

    name = "promo_abuser"
    label: Label = "fraud"
    per_day = 1.0
    tor_share = 0.15  # of the careless who do not hop VPN exits
    antidetect_share = 0.2  # of the careless who use neither

    def actors(self, world: World) -> list[Actor]:
        plan = world.rng(self.name, "plan")
        actors = []
        for index in range(world.count(self.per_day, True)):
            home = geo.home_city(plan)
            time = clock.first_visit(plan, world.start_ms, world.end_ms, home.utc_offset_min)
            actors.append(Actor(time, partial(self._abuser, world, index, home, time)))
        return actors

    def _abuser(self, world: World, index: int, home: City, time: int) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        careful = rng.random() < 0.2
        hops_vpn = not careful and rng.random() < 0.35
        # Tor Browser's "New Identity" (fresh storage, fresh circuit) as a free reset, or a
        # multi-accounting tool: a fresh anti-detect profile; either every 1-3 sign-ups.
        tor = not careful and not hops_vpn and rng.random() < self.tor_share
        farmer = not careful and not tor and rng.random() < self.antidetect_share
        tool = anti_detect_profile(rng) if farmer else PLAIN
        profile_left = 0
        tor_ip = None
        risk = 0.8 if rng.random() < 0.3 else 0.25 if careful else 0.55
        owned = []
        for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0]):
            known = rng.random() < 0.5
            since = time - rng.randint(10, 300) * clock.DAY_MS if known else time
            last = since + rng.randrange(max(1, time - since)) if known else None
            owned.append(devices.new_device(rng, devices.any_device(rng, 0.4), home, since, last))
        home_ip = geo.residential(rng, home)
        first, last_name = ids.person(rng)
        base_local = f"{first}{last_name}{rng.randint(1, 99)}"
        burst_left = rng.randint(5, 12)
        signups = max(4, round(rng.randint(8, 35) * world.intensity(self.per_day, True)))
        for number in range(signups):
            account = Account(ids.alias_email(rng, base_local, number + 2))
            device = rng.choice(owned)
            if farmer or tor:
                if profile_left == 0:
                    profile_left = rng.randint(1, 3)
                    profile = devices.desktop(rng) if tor else devices.any_device(rng, 0.4)
                    owned = [devices.new_device(rng, profile, home, time)]
                    tor_ip = geo.tor_exit(rng) if tor else None
                device = owned[0]
                profile_left -= 1
            ip = geo.vpn_exit(rng) if hops_vpn and rng.random() < 0.8 else tor_ip or home_ip
            incognito = not careful and rng.random() < 0.85
            steps: list[Step] = [SIGNUP, COUPON, CHECKOUT]
            if rng.random() < 0.5:
                steps.append(ORDER)
            for event, path in steps:
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
                    confidence=rng.uniform(0.85, 0.99) if incognito else rng.uniform(0.93, 1.0),
                    incognito=incognito,
                    signals=tool_signals(rng, tool, tor_browser=tor),
                    risk=risk,
                    email_trait=event == "Signed Up",
                    extra={"coupon": rng.choice(COUPONS[:2])} if (event, path) == COUPON else None,
                )
                time += step_gap(rng)
            time += rng.randint(3, 40) * clock.MINUTE_MS
            burst_left -= 1
            if burst_left == 0:
                burst_left = rng.randint(5, 12)
                time = clock.next_visit(rng, time, 0.3, home.utc_offset_min)


class Carders:
    """Stolen cards checked out from aged accounts [fraud].

    A carder buys (or grew) an account with months of history and works it from one laptop
    Fingerprint has known as long: mostly a clean browser (below), high confidence, its time
    zone set to the cardholders' market, one user id. Over one to three days, two to six sessions
    each go out through a fresh residential-proxy exit in that market (Fingerprint knows
    a third of those pools) and try stolen cards: log in, check out, enter one card after
    another until one passes. Fingerprint sees a returning customer; the proxies and the
    card testing are known across IPQS's network (high fraud_chance, recent abuse), so
    IPQS, where it is asked, is often the only tell.

    Two in five keep the account in an anti-detect browser profile instead of a plain
    browser (aged accounts change hands with a browser profile that keeps their cookies,
    so Fingerprint still knows the visitor): a person at the keyboard, no bot signal, and
    Fingerprint flags most such builds as tampering (``anti_detect_profile``).
    Carders avoid Tor: payment pages and card issuers turn Tor exits away.
    """

    name = "carder"
    label: Label = "fraud"
    per_day = 2.0
    antidetect_share = 0.4
    markets = ("US", "US", "GB", "DE", "CA", "FR")

    def actors(self, world: World) -> list[Actor]:
        plan = world.rng(self.name, "plan")
        actors = []
        for index in range(world.count(self.per_day, True)):
            market = geo.CITIES[plan.choice(self.markets)]
            city = plan.choice(market)
            account = world.existing_account(plan, *ids.person(plan))
            time = clock.first_visit(plan, world.start_ms, world.end_ms, city.utc_offset_min)
            actors.append(Actor(time, partial(self._carder, world, index, city, account, time)))
        return actors

    def _carder(
        self, world: World, index: int, city: City, account: Account, time: int
    ) -> Iterator[Visit]:
        rng = world.rng(self.name, index)
        since = time - rng.randint(60, 600) * clock.DAY_MS
        last = time - rng.randint(3, 40) * clock.DAY_MS
        device = devices.new_device(rng, devices.desktop(rng), city, since, max(since, last))
        tool = anti_detect_profile(rng) if rng.random() < self.antidetect_share else PLAIN
        sessions = max(1, round(rng.randint(2, 6) * world.intensity(self.per_day, True)))
        for _ in range(sessions):
            ip = geo.residential_proxy(rng, city.country, detected=rng.random() < 0.33)
            steps: list[Step] = [LOGIN, CHECKOUT]
            steps += [PAYMENT] * rng.randint(1, 4)
            if rng.random() < 0.6:
                steps.append(ORDER)
            for event, path in steps:
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
                    tz_city=ip.city,
                    event=event,
                    path=path,
                    confidence=regular_confidence(rng),
                    signals=tool_signals(rng, tool),
                    risk=0.85,
                )
                time += step_gap(rng)
            time = clock.next_visit(rng, time, 0.6, city.utc_offset_min)
