"""The traffic simulator: reproducible, time-ordered, decodable, labelled, and the populations
behave as their descriptions say."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from service.decode import decode_fingerprint, decode_ipqs
from service.observation import Observation
from service.simulate import (
    POPULATIONS,
    Population,
    SimEvent,
    SimulationConfig,
    main,
    simulate,
    write,
)
from service.simulation import fraud, legit
from service.simulation.clock import DAY_MS
from service.simulation.fingerprint import WEIGHTS
from service.simulation.visit import Visit
from service.simulation.world import World

SMALL = SimulationConfig(seed=11, days=3, scale=0.2)
HOUR = timedelta(hours=1)
EXPECTED_LABELS = {
    "returning_customer": "legit",
    "new_customer": "legit",
    "privacy_user": "legit",
    "family": "legit",
    "shared_network": "legit",
    "credential_stuffing": "fraud",
    "fraud_ring": "fraud",
    "account_takeover": "fraud",
    "hijacked_session": "fraud",
    "promo_abuser": "fraud",
    "carder": "fraud",
}


def _decode(event: SimEvent) -> Observation:
    if event.kind == "ipqs":
        return decode_ipqs(event.body, received_at=event.time)
    return decode_fingerprint(event.body)


@pytest.fixture(scope="module")
def events() -> list[SimEvent]:
    return list(simulate(SMALL))


@pytest.fixture(scope="module")
def decoded(events: list[SimEvent]) -> list[tuple[SimEvent, Observation]]:
    return [(event, _decode(event)) for event in events]


def test_same_config_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = write(SMALL, tmp_path / "a")
    second = write(SMALL, tmp_path / "b")
    other = write(msgspec.structs.replace(SMALL, seed=SMALL.seed + 1), tmp_path / "c")
    for name in ("events.jsonl", "labels.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first == second
    events_c = (tmp_path / "c" / "events.jsonl").read_bytes()
    assert events_c != (tmp_path / "a" / "events.jsonl").read_bytes()
    assert other != first
    assert not list(tmp_path.glob("*/*.partial"))


def test_events_are_in_time_order(events: list[SimEvent]) -> None:
    times = [event.time for event in events]
    assert times == sorted(times)
    assert times[0] >= SMALL.start
    # IPQS results may trail the last page load by a few seconds, nothing more.
    assert times[-1] < SMALL.start + timedelta(days=SMALL.days, minutes=1)


def test_every_body_decodes_with_the_projects_decoders(
    decoded: list[tuple[SimEvent, Observation]],
) -> None:
    for event, obs in decoded:
        assert obs.source == event.kind
        assert obs.request_id == event.request_id
        assert obs.time == event.time
        assert obs.user_id and obs.user_id.startswith("u-")
        failed_lookup = obs.ipqs is not None and not obs.ipqs.success
        assert bool(obs.visitor_id) != failed_lookup  # a failed lookup names no device
        if event.kind != "ipqs":
            assert obs.segment is not None and obs.segment.track is not None
            assert obs.confidence is not None and 0 < obs.confidence <= 1
            assert obs.country and obs.ip and obs.browser is not None
    kinds = Counter(event.kind for event, _ in decoded)
    assert set(kinds) == {"fingerprint_v3", "fingerprint_v4", "ipqs"}


def test_request_ids_are_unique_and_shaped_like_the_vendors(events: list[SimEvent]) -> None:
    assert len({(e.kind == "ipqs", e.request_id) for e in events}) == len(events)
    for event in events:
        if event.kind == "fingerprint_v3":
            assert len(event.request_id) == 20 and event.request_id.isalnum()
        elif event.kind == "fingerprint_v4":
            millis, _, suffix = event.request_id.partition(".")
            assert millis.isdigit() and len(suffix) == 6 and suffix.isalnum()


def test_labels_file_matches_events_line_by_line(tmp_path: Path, events: list[SimEvent]) -> None:
    summary = write(SMALL, tmp_path)
    bodies = (tmp_path / "events.jsonl").read_bytes().splitlines()
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(bodies) == len(labels) == len(events) == summary.events
    for body, label, event in zip(bodies, labels, events, strict=True):
        assert body == event.body
        assert set(label) == {"requestId", "kind", "label", "population", "time"}
        assert label["requestId"] == event.request_id == _decode(event).request_id
        assert (label["kind"], label["label"], label["population"]) == (
            event.kind,
            event.label,
            event.population,
        )
        assert msgspec.json.decode(f'"{label["time"]}"'.encode(), type=type(event.time)) == (
            event.time
        )


def test_every_population_appears_with_its_label(events: list[SimEvent]) -> None:
    seen = {(event.population, event.label) for event in events}
    assert seen == set(EXPECTED_LABELS.items())
    assert {p.name: p.label for p in POPULATIONS} == EXPECTED_LABELS


def test_summary_counts_add_up(tmp_path: Path, events: list[SimEvent]) -> None:
    summary = write(SMALL, tmp_path)
    assert summary.by_kind == dict(Counter(event.kind for event in events))
    assert summary.by_label == dict(Counter(event.label for event in events))
    for name, row in summary.populations.items():
        assert row.label == EXPECTED_LABELS[name]
        assert row.events == sum(1 for event in events if event.population == name)
    assert "fraud share" in summary.render()


@pytest.fixture(scope="module")
def medium() -> list[SimEvent]:
    # Big enough for population shares and distributions to settle, still well under a second.
    return list(simulate(SimulationConfig(seed=7, days=4, scale=0.35)))


def test_fraud_share_is_realistic(medium: list[SimEvent]) -> None:
    share = sum(event.label == "fraud" for event in medium) / len(medium)
    # ~10-20 % at full scale; a small run has few fraud actors, so its share is lumpier.
    assert 0.05 <= share <= 0.3


def test_account_takeover_reuses_returning_customers_ids_on_new_devices(
    decoded: list[tuple[SimEvent, Observation]],
) -> None:
    first_seen: dict[str, Observation] = {}
    returning_devices: set[str] = set()
    takeovers: list[Observation] = []
    for event, obs in decoded:
        if event.kind == "ipqs":
            continue
        if event.population == "returning_customer":
            assert obs.user_id is not None and obs.visitor_id is not None
            first_seen.setdefault(obs.user_id, obs)
            returning_devices.add(obs.visitor_id)
        elif event.population == "account_takeover":
            takeovers.append(obs)
    assert takeovers
    attacker_devices: dict[str, Observation] = {}
    for obs in takeovers:
        assert obs.user_id in first_seen, "a takeover must hit an existing customer"
        assert first_seen[obs.user_id].time < obs.time, "the customer was seen before"
        assert obs.visitor_id not in returning_devices
        assert obs.visitor_id is not None
        attacker_devices.setdefault(obs.visitor_id, obs)
    # Each attacker's device is brand-new to Fingerprint on its first event.
    assert all(obs.visitor_found is False for obs in attacker_devices.values())


def test_fraud_ring_cycles_five_or_more_user_ids_on_a_device_within_an_hour(
    decoded: list[tuple[SimEvent, Observation]],
) -> None:
    by_device: dict[str, list[Observation]] = defaultdict(list)
    for event, obs in decoded:
        if event.population == "fraud_ring" and event.kind != "ipqs":
            assert obs.visitor_id is not None
            by_device[obs.visitor_id].append(obs)
    best = 0
    for sightings in by_device.values():
        for start in sightings:
            window = {
                o.user_id
                for o in sightings
                if start.time <= o.time < start.time + timedelta(hours=1)
            }
            best = max(best, len(window))
    assert best >= 5


def test_families_share_a_device_mostly_across_hours_never_like_a_ring(
    medium: list[SimEvent],
) -> None:
    by_device: dict[str, list[Observation]] = defaultdict(list)
    for event in medium:
        if event.population == "family" and event.kind != "ipqs":
            obs = decode_fingerprint(event.body)
            assert obs.visitor_id is not None
            by_device[obs.visitor_id].append(obs)
    assert any(len({o.user_id for o in sightings}) >= 2 for sightings in by_device.values())
    handovers = takeovers = 0
    for sightings in by_device.values():
        assert len({o.ip for o in sightings}) == 1
        for before, after in itertools.pairwise(sightings):
            if before.user_id != after.user_id:
                quick = after.time - before.time < timedelta(hours=1)
                handovers += quick
                takeovers += not quick
        # A member may hand the device over within minutes, but an hour never holds more
        # than two of them (a ring cycles five or more).
        for start in sightings:
            hour = {o.user_id for o in sightings if start.time <= o.time < start.time + HOUR}
            assert len(hour) <= 2
    assert 0 < handovers < takeovers


def test_legitimate_visits_include_bursts_of_page_loads(medium: list[SimEvent]) -> None:
    """Customers browse: one user on one device loads six or more pages within the hour."""
    by_visitor: dict[tuple[str, str | None], list[Observation]] = defaultdict(list)
    for event in medium:
        if event.label == "legit" and event.kind != "ipqs":
            obs = decode_fingerprint(event.body)
            assert obs.visitor_id is not None
            by_visitor[(obs.visitor_id, obs.user_id)].append(obs)
    bursts = 0
    for sightings in by_visitor.values():
        times = [o.time for o in sightings]
        bursts += any(later - first < HOUR for first, later in zip(times, times[5:], strict=False))
    assert bursts >= 10


def test_suspect_score_is_the_sum_of_the_published_weights(
    decoded: list[tuple[SimEvent, Observation]],
) -> None:
    for event, obs in decoded:
        if event.kind == "ipqs":
            continue
        s = obs.signals
        public_vpn = s.vpn_public
        if event.kind == "fingerprint_v3":
            # Read from the raw body: the v3 wire spells it "publicVPN".
            public_vpn = json.loads(event.body)["vpn"]["methods"]["publicVPN"]
        fired = {
            "bot": s.bot,
            "incognito": obs.incognito,
            "vpn_timezone_mismatch": s.vpn_timezone_mismatch,
            "vpn_public": public_vpn,
            "relay": s.relay,
            "tampering": s.tampering,
            "anti_detect_browser": s.anti_detect_browser,
            "virtual_machine": s.virtual_machine,
            "privacy_settings": s.privacy_settings,
            "tor": s.tor,
            "proxy": s.proxy,
            "ip_blocklist": s.ip_blocklist,
            "attack_source": s.attack_source,
            "high_activity": s.high_activity,
        }
        assert s.suspect_score == sum(WEIGHTS[name] for name, on in fired.items() if on)


def test_signals_separate_populations_only_partly(medium: list[SimEvent]) -> None:
    chances: dict[str, list[int]] = {"legit": [], "fraud": []}
    for event in medium:
        if event.kind == "ipqs":
            ipqs = _decode(event).ipqs
            assert ipqs is not None
            if ipqs.success and ipqs.fraud_chance is not None:
                chances[event.label].append(ipqs.fraud_chance)
    legit, fraud = sorted(chances["legit"]), sorted(chances["fraud"])
    legit_median, fraud_median = legit[len(legit) // 2], fraud[len(fraud) // 2]
    assert 18 <= legit_median <= 32  # IPQS: 25 is the median result
    assert fraud_median >= legit_median + 10
    # The distributions overlap: no threshold on fraud_chance alone splits them.
    assert fraud[len(fraud) // 10] < legit[len(legit) * 95 // 100]
    stuffing = [
        _decode(e) for e in medium if e.population == "credential_stuffing" and e.kind != "ipqs"
    ]
    assert sum(o.signals.bot is True for o in stuffing) > len(stuffing) / 2


def test_shares_are_honoured() -> None:
    only_v3 = list(simulate(SimulationConfig(days=1, scale=0.05, v4_share=0.0, ipqs_share=0.0)))
    assert {event.kind for event in only_v3} == {"fingerprint_v3"}
    only_v4 = list(simulate(SimulationConfig(days=1, scale=0.05, v4_share=1.0, ipqs_share=1.0)))
    kinds = Counter(event.kind for event in only_v4)
    assert set(kinds) == {"fingerprint_v4", "ipqs"}
    assert kinds["ipqs"] == kinds["fingerprint_v4"]


@pytest.mark.parametrize(
    "bad",
    [{"days": 0}, {"scale": 0.0}, {"v4_share": 1.5}, {"ipqs_share": -0.1}],
)
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**bad)  # type: ignore[arg-type]


def test_main_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    code = main(["--days", "1", "--scale", "0.05", "--seed", "3", "--out", str(out)])
    assert code == 0
    assert (out / "events.jsonl").stat().st_size > 0
    lines = (out / "labels.jsonl").read_text().splitlines()
    assert len(lines) == len((out / "events.jsonl").read_bytes().splitlines())
    printed = capsys.readouterr().out
    assert "returning_customer" in printed and "events/s" in printed


def test_hijacked_sessions_look_like_their_customer_but_for_the_signals(
    medium: list[SimEvent],
) -> None:
    """The population that teaches a model the signals: known device, hostile browser."""
    returning_devices: set[str | None] = set()
    hijacked = []
    for event in medium:
        if event.kind == "ipqs":
            continue
        obs = decode_fingerprint(event.body)
        if event.population == "returning_customer":
            returning_devices.add(obs.visitor_id)
        elif event.population == "hijacked_session":
            hijacked.append(obs)
    assert hijacked
    assert all(obs.visitor_found and (obs.confidence or 0) >= 0.9 for obs in hijacked)
    assert sum(obs.visitor_id in returning_devices for obs in hijacked) > len(hijacked) / 2
    assert sum(bool(obs.signals.bot) for obs in hijacked) > len(hijacked) / 2


def test_people_not_bots_bring_tor_and_anti_detect_browsers() -> None:
    """Human-operated fraud (takeovers, carders, promo abusers) reaches the shop through Tor
    and tampered / anti-detect browsers without any bot signal, at modest rates, and a few
    legitimate privacy users are on Tor too (in Tor Browser): Tor is evidence, not proof."""
    start = 1_790_000_000_000
    world = World.build(7, start, start + 14 * DAY_MS, 1.0, 0.5, 0.6)

    def visits(population: Population) -> list[Visit]:
        return [visit for actor in population.actors(world) for visit in actor.run()]

    people = [
        v
        for population in (fraud.AccountTakeover(), fraud.Carders(), fraud.PromoAbusers())
        for v in visits(population)
    ]
    assert all(v.signals.bot == "notDetected" for v in people)
    tor = [v for v in people if v.ip.tor]
    tampered = [v for v in people if v.signals.tampering]
    assert 0 < len(tor) < 0.1 * len(people)
    assert all(v.signals.privacy_settings for v in tor)  # Tor Browser
    assert 0.05 * len(people) < len(tampered) < 0.5 * len(people)
    assert any(v.signals.anti_detect for v in tampered)
    assert not any(v.signals.tampering for v in tor)  # Tor Browser is not an anti-detect build
    privacy = visits(legit.PrivacyUsers())
    on_tor = [v for v in privacy if v.ip.tor]
    assert 0 < len(on_tor) < 0.02 * len(privacy)
    assert all(v.signals.privacy_settings for v in on_tor)
