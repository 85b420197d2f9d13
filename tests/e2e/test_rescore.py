"""Batch rescoring: the same stream scored online (Redis) and in batch (memory) agrees."""

from __future__ import annotations

import asyncio
import gzip
import heapq
import io
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np
import pytest
import redis as sync_redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import DEFAULT_MODEL, load_model
from service.bench.micro import (
    RESCORE_MEMORY_MAX_GROWTH,
    STEADY_DAYS,
    rescore_peak_bytes,
    steady_ipqs_stream,
)
from service.bench.servers import clean_environment
from service.decode import decode_event
from service.features import FeatureSpec
from service.identifiers import IdentifierPolicy
from service.keys import Keys
from service.lists import AccessLists
from service.observation import Observation
from service.redis_server import free_port
from service.rescore import (
    MemoPolicy,
    Rescorer,
    Summary,
    _in_time_order,
    _iso_times,
    _Verdicts,
    main,
    ranking_keys,
)
from service.rescore_emit import EmitError, OutboxFeed
from service.rescore_input import CHUNK, InputError, read_lines
from service.reuse_memory import MEMBER_KINDS, MemoryReuseStore
from service.scoring import Scorer
from service.settings import Settings
from service.simulate import SimulationConfig, simulate
from service.specs import iso8601, rescore_identify
from tests.segment_receiver import SegmentReceiver

AUTH = {"authorization": "Bearer checkout-key"}


def stream(events: int) -> list[tuple[str, bytes]]:
    config = SimulationConfig(seed=5, days=2, scale=0.25)
    return [(e.kind, e.body) for e, _ in zip(simulate(config), range(events), strict=False)]


def rescore(settings: Settings, lines: list[bytes]) -> tuple[dict[str, dict[str, Any]], Summary]:
    _, model, thresholds = load_model(settings)
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = Rescorer(settings, model, thresholds).run(iter(lines), out, rejects)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return {row["requestId"]: row for row in rows}, summary


async def test_rescoring_equals_online_scoring_on_the_same_stream(
    app_with: Callable[..., Litestar], settings: Settings
) -> None:
    events = stream(400)
    assert {kind for kind, _ in events} == {"fingerprint_v3", "fingerprint_v4", "ipqs"}
    online: dict[str, int] = {}
    async with AsyncTestClient(app_with(forwarder_enabled=False)) as client:
        for kind, body in events:
            url = "/webhooks/ipqs" if kind == "ipqs" else "/webhooks/fingerprint"
            response = await client.post(url, content=body, headers=AUTH)
            assert response.status_code == 200, response.text
            answer = response.json()
            online[answer["requestId"]] = answer["risk"]["score"]
    batch, summary = rescore(settings, [body for _, body in events])
    assert summary.events == len(batch) == len(online) == len(events)
    assert {rid: row["score"] for rid, row in batch.items()} == online
    # The stream is not trivially clean: some events scored well above the rest.
    assert max(online.values()) >= 50 > min(online.values())


def test_bad_lines_are_rejected_with_their_line_number_and_order_is_restored(
    settings: Settings,
) -> None:
    events = [body for _, body in stream(60)]
    shuffled = events[10:20][::-1] + events[:10] + events[20:]  # a late batch of ten
    lines = [*shuffled[:5], b'{"not": "an event"}', b"{broken", *shuffled[5:]]
    _, model, thresholds = load_model(settings)
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = Rescorer(settings, model, thresholds, reorder_window=50).run(
        iter(lines), out, rejects
    )
    assert summary.events == 60 and summary.rejected == 2
    problems = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert [p["line"] for p in problems] == [6, 7]
    times = [json.loads(line)["time"] for line in out.getvalue().splitlines()]
    assert times == sorted(times)
    assert sum(summary.by_level.values()) == 60


def test_an_ipqs_result_without_time_is_rejected_where_it_stands(settings: Settings) -> None:
    """Its block is decoded line by line (the others all at once): the reject keeps its line
    number, and every other line of every block is scored once."""
    events = stream(2 * CHUNK + 40)
    at = next(n for n, (kind, _) in enumerate(events) if kind == "ipqs" and n > CHUNK)
    timeless = json.loads(events[at][1])
    del timeless["time"]
    lines = [body for _, body in events]
    lines[at] = json.dumps(timeless).encode()
    scored, summary = rescore(settings, lines)
    assert summary.rejected == 1 and summary.events == len(lines) - 1 == len(scored)
    _, model, thresholds = load_model(settings)
    rejects = io.BytesIO()
    Rescorer(settings, model, thresholds).run(iter(lines), io.BytesIO(), rejects)
    assert json.loads(rejects.getvalue()) == {
        "line": at + 1,
        "error": "IPQS result without `time`: cannot place it",
        "field": "$.time",
    }


def test_chunked_rescoring_equals_scoring_event_by_event(settings: Settings) -> None:
    """The batch path (chunks of rows, one model call per chunk, store times carried from
    the reorder buffer) gives each event the verdict ``Scorer`` gives it alone, in the order
    the events come out: across chunk boundaries, with late events among them."""
    events = [body for _, body in stream(1300)]
    assert len(events) > 2 * CHUNK
    # Blocks moved back by more than the reorder window: they arrive (and are scored) late.
    lines = events[:400] + events[600:900] + events[400:600] + events[1100:] + events[900:1100]
    _, model, thresholds = load_model(settings)
    out, rejects, emitted = io.BytesIO(), io.BytesIO(), list[bytes]()
    rescorer = Rescorer(settings, model, thresholds, reorder_window=40)
    summary = rescorer.run(iter(lines), out, rejects, emitted=emitted)
    assert summary.events == len(events) == len(emitted) and summary.late > 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    epoch = datetime.fromtimestamp(0, UTC)
    observations = {obs.request_id: obs for obs in (decode_event(b, epoch) for b in events)}
    assert len(observations) == len(events)
    scorer = Scorer(
        policy=IdentifierPolicy(b"any key will do"),
        store=None,
        spec=FeatureSpec(settings.reuse_window_labels),
        model=model,
        thresholds=thresholds,
        lists=AccessLists(settings),
    )
    store = MemoryReuseStore(
        windows_ms=settings.reuse_windows_ms,
        cap=settings.reuse_cap,
        ipqs_window_ms=settings.ipqs_join_window_s * 1000,
    )
    for row, message in zip(rows, emitted, strict=True):
        obs = observations[row["requestId"]]
        risk = scorer.verdict(obs, scorer.features_in(store, obs))
        assert (row["score"], row["level"], row["action"]) == (risk.score, risk.level, risk.action)
        assert row["reasons"] == [reason.code for reason in risk.reasons]
        assert row["time"] == iso8601(obs.time)
        # The identify of the event as it was decoded whole (rescoring keeps less of it).
        expected = rescore_identify(obs, risk, settings.trait_prefix, rescorer._started_at)
        assert message == expected


class Naming:
    """Pairs of (hash, name) seen for one kind of identifier: a renaming holds when None
    pairs with None only, and each hash with one name that no other hash has."""

    def __init__(self) -> None:
        self.names: dict[str | None, set[str | None]] = {}

    def add(self, hashed: str | None, named: str | None) -> None:
        assert (hashed is None) == (named is None), (hashed, named)
        self.names.setdefault(hashed, set()).add(named)

    def check(self) -> int:
        names = [name for named in self.names.values() for name in named]
        assert len(names) == len(set(names)) == len(self.names)
        return len(self.names)


def test_memo_policy_names_as_the_policy_hashes() -> None:
    """Every kind of identifier, through the policy's own methods: the same hygiene, and
    one name wherever the plain policy has one hash."""
    plain = IdentifierPolicy(b"k", ["void"])
    memo = MemoPolicy(b"k", ["void"])
    values: list[str | None] = [f"user-{n % 13}" for n in range(60)]
    values += ["void", " Void ", "-1", "a@b.example", "A@B.example ", "c@d.example", None]
    values += ["10.0.0.1", " ::1", "0:0::1", "nope", "é€😀", ""]
    naming: dict[str, Naming] = {}
    for value in values * 2:
        for kind in ("user", "email", "linked", "ip"):
            method = attrgetter(kind)
            naming.setdefault(kind, Naming()).add(method(plain)(value), method(memo)(value))
        for space in ("fp", "ipqs"):
            naming.setdefault("device", Naming()).add(
                plain.device(space, value), memo.device(space, value)
            )
            if value is not None:
                naming.setdefault("request", Naming()).add(
                    plain.request(space, value), memo.request(space, value)
                )
    # None and at least two hashes each, from values that differ only by hygiene too.
    assert all(named.check() >= 3 for named in naming.values())
    # No name of one kind is a name of another (a user id and an email are both users).
    kinds = [
        {name for named in n.names.values() for name in named} - {None} for n in naming.values()
    ]
    assert sum(map(len, kinds)) == len(set().union(*kinds))
    assert memo.user("void") is None and memo.ip("nope") is None
    assert memo.email(" A@B.example") == memo.email("a@b.example")
    assert memo.ip("::1") == memo.ip("0:0::1")


def with_odd_identifiers() -> list[Observation]:
    """A simulated stream of all three sources, and odd identifiers: blocked, padded,
    missing, countries that are not two letters."""
    epoch = datetime.fromtimestamp(0, UTC)
    observations = [decode_event(body, epoch) for _, body in stream(600)]
    assert {obs.source for obs in observations} == {"fingerprint_v3", "fingerprint_v4", "ipqs"}
    odd = observations[0]
    for country in ("fr", "FRA", "", None):
        for user in ("void", " Shopper ", None):
            observations.append(
                msgspec.structs.replace(
                    odd, country=country, user_id=user, email=user, ip=user, linked_id=user
                )
            )
    return observations


def plain_scorer(settings: Settings) -> Scorer:
    _, model, thresholds = load_model(settings)
    return Scorer(
        policy=IdentifierPolicy(b"k", ["void"]),
        store=None,
        spec=FeatureSpec(settings.reuse_window_labels),
        model=model,
        thresholds=thresholds,
        lists=AccessLists(settings),
    )


def test_memo_policy_refs_are_the_scorers_refs_renamed(settings: Settings) -> None:
    observations = with_odd_identifiers()
    plain = plain_scorer(settings)
    memo = MemoPolicy(b"k", ["void"], size=50)  # small: the memos start over
    naming: dict[str, Naming] = {}
    for obs in observations * 2:
        hashed, named = plain.refs(obs), memo.refs(obs)
        assert named.device_space == hashed.device_space
        assert named.country == hashed.country  # not hashed
        assert named.event == memo.request(obs.idempotency_scope, obs.request_id)
        for kind in ("device", "user", "email", "ip", "linked", "event"):
            naming.setdefault(kind, Naming()).add(getattr(hashed, kind), getattr(named, kind))
    assert all(named.check() > 3 for named in naming.values())


def test_memo_policy_members_are_what_the_store_reads_off_its_refs() -> None:
    """``MemoPolicy.members`` (which ``record_many`` takes instead of refs) against its
    refs, read as ``MemoryReuseStore.observe`` reads them; both calls give the same counts
    (small windows and cap: members leave them)."""
    memo = MemoPolicy(b"k", ["void"], size=50)
    by_refs = MemoryReuseStore(windows_ms=(60_000, 3_600_000), cap=5, ipqs_window_ms=60_000)
    by_members = MemoryReuseStore(windows_ms=(60_000, 3_600_000), cap=5, ipqs_window_ms=60_000)
    for obs in with_odd_identifiers() * 2:
        refs = memo.refs(obs)
        space, ids, members = memo.members(obs)
        assert space == refs.device_space
        assert ids == (refs.device, refs.user or refs.email, refs.ip)
        assert members == tuple(getattr(refs, kind) for kind in MEMBER_KINDS)
        moment = int(obs.time.timestamp() * 1000)
        counts, first_seen, joined = by_members.record_many(
            [(space, ids, members)], [moment], [None]
        )
        expected = by_refs.observe(refs, moment)
        assert memoryview(counts).cast("q").tolist() == expected.flat
        assert (first_seen, joined) == ([expected.device_first_seen_ms], [expected.ipqs_blob])


def _heap_order(stamped: list[tuple[int, int, float, str]], window: int) -> tuple[list[str], int]:
    """The reorder buffer as one heap: the definition ``_in_time_order`` must match."""
    heap: list[tuple[int, int, float, str]] = []
    out, late, newest = [], 0, -(2**62)
    for item in stamped:
        if len(heap) < window:
            heapq.heappush(heap, item)
            continue
        first = heapq.heappushpop(heap, item)
        late += first[0] < newest
        newest = max(newest, first[0])
        out.append(first[3])
    while heap:
        first = heapq.heappop(heap)
        late += first[0] < newest
        newest = max(newest, first[0])
        out.append(first[3])
    return out, late


def test_chunk_times_are_formatted_as_iso8601_formats_them() -> None:
    """Microseconds at the edges of a millisecond, times far from the epoch (which numpy
    cannot place exactly from float seconds), other time zones."""
    rng = random.Random(6)
    moments = [datetime(2038, 1, 19, 3, 14, 7, 999_999, tzinfo=UTC)]  # the last exact one
    for _ in range(5000):
        moment = datetime(1820, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randint(0, 300 * 365 * 86_400),
            microseconds=rng.choice([0, 999, 1000, 1001, 999_999, rng.randint(0, 999_999)]),
        )
        zone = timezone(timedelta(hours=rng.choice([0, 0, 2, -7])))
        moments.append(moment.astimezone(zone))
    observations = [
        Observation(source="ipqs", request_id=str(n), visitor_id=None, time=moment)
        for n, moment in enumerate(moments)
    ]
    seconds = [moment.timestamp() for moment in moments]
    assert _iso_times(observations, seconds) == [iso8601(moment) for moment in moments]
    assert _iso_times([], []) == []


@pytest.mark.parametrize("window", [0, 1, 3, 40, 10_000])
def test_the_reorder_buffer_gives_what_one_heap_gives(window: int) -> None:
    rng = random.Random(window)
    moments, now = [], 0
    for _ in range(3000):
        now += rng.choice([0, 0, 1, 5, 20])
        # Mostly in order; some ties, some a little early or late, some far off.
        moments.append(now - rng.choice([0] * 12 + [1, 3, 30, 200, -50]))
    stamped = [(m, n, m / 1000, f"line {n}") for n, m in enumerate(moments, start=1)]
    # Taken in blocks of any size (empty ones too), given back in blocks.
    blocks, start = [], 0
    while start < len(stamped):
        size = rng.choice([0, 1, 7, CHUNK, 700])
        blocks.append(stamped[start : start + size])
        start += size
    summary = Summary()
    given = list(_in_time_order(iter(blocks), window, summary))
    assert all(len(block) <= CHUNK for block in given[len(blocks) :])
    ordered = [obs for block in given for _, _, _, obs in block]
    expected, late = _heap_order(stamped, window)
    assert ordered == expected
    assert summary.late == late
    assert late > 0 or window == 10_000


def test_rescoring_puts_the_garbage_collector_back_as_it_was(settings: Settings) -> None:
    import gc

    _, model, thresholds = load_model(settings)
    before = gc.get_threshold()
    lines = [body for _, body in stream(20)]
    Rescorer(settings, model, thresholds).run(iter(lines), io.BytesIO(), io.BytesIO())
    assert gc.get_threshold() == before

    def broken_input() -> Iterator[bytes]:
        yield lines[0]
        raise OSError("the input went away")

    with pytest.raises(InputError, match="cannot be read: the input went away"):
        Rescorer(settings, model, thresholds).run(broken_input(), io.BytesIO(), io.BytesIO())
    assert gc.get_threshold() == before


def test_compare_model_reports_changed_actions(settings: Settings) -> None:
    from service.model import Thresholds

    events = [body for _, body in stream(200)]
    _, model, thresholds = load_model(settings)
    strict = Thresholds(review=5, block=30)
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = Rescorer(settings, model, strict, compare=(model, thresholds)).run(
        iter(events), out, rejects
    )
    assert summary.changed_actions
    assert all(key.split("->")[0] != key.split("->")[1] for key in summary.changed_actions)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    changed = sum(row["previousAction"] != row["action"] for row in rows)
    assert changed == sum(summary.changed_actions.values())


def test_gzip_input_is_read_as_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wb") as packed:
        packed.write(b'{"a": 1}\n\n{"b": 2}\n')
    assert list(read_lines(path)) == [b'{"a": 1}\n', b'{"b": 2}\n']


async def test_rescore_endpoint_rescores_held_events_and_re_emits(
    app_with: Callable[..., Litestar], segment: SegmentReceiver
) -> None:
    from tests.e2e.test_scoring import minute, post
    from tests.payloads import clean_v3

    visitor = "RescoreDevice0000001"
    # Pinned to the hand-set baseline, whose scores for this visitor are known: Tor on a
    # clean device lands in its review band (50-80). The trained model scores it near 0.
    baseline = str(DEFAULT_MODEL.with_name("baseline-model.json"))
    async with AsyncTestClient(app_with(model_path=baseline)) as client:
        for n in range(3):
            body = clean_v3(f"resc-{n}", visitor, "shopper-r", minute(n))
            body["tor"] = {"result": True}  # scores in the baseline's review band
            await post(client, body)
        # The same shopper through IPQS: a device of another vendor's id space.
        ipqs = {
            "request_id": "resc-ipqs",
            "success": True,
            "guid": "G-rescore",
            "fraud_chance": 10,
            "userID": "shopper-r",
            "time": int(datetime(2026, 11, 1, 12, 3, tzinfo=UTC).timestamp()),
        }
        assert (await client.post("/webhooks/ipqs", json=ipqs, headers=AUTH)).status_code == 200
        await asyncio.to_thread(segment.wait_for, 4)
    # Thresholds change: the held events are rescored with the new policy and re-sent.
    rethresholded = app_with(model_path=baseline, review_threshold=10, block_threshold=20)
    async with AsyncTestClient(rethresholded) as client:
        response = await client.post("/v1/rescore", json={"visitorId": visitor}, headers=AUTH)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["rescored"] == 3 and result["emitted"] == 3 and result["unavailable"] == 0
        assert {e["previousAction"] for e in result["events"]} != {"block"}
        assert {e["action"] for e in result["events"]} == {"block"}
        by_user = await client.post("/v1/rescore", json={"userId": "shopper-r"}, headers=AUTH)
        # Every device the user was seen on, whichever vendor named it.
        assert {e["requestId"] for e in by_user.json()["events"]} == {
            "resc-0",
            "resc-1",
            "resc-2",
            "resc-ipqs",
        }
        for body, field in (({}, "$"), ({"visitorId": "a", "userId": "b"}, "$")):
            bad = await client.post("/v1/rescore", json=body, headers=AUTH)
            assert bad.status_code == 422 and bad.json()["error"]["field"] == field
        unknown = await client.post("/v1/rescore", json={"userId": "nobody"}, headers=AUTH)
        assert unknown.status_code == 404
        messages = await asyncio.to_thread(segment.wait_for, 4 + 3 + 4)
    rescored = [m for m in messages if m["messageId"].startswith("rw-rescore-")]
    from_ipqs = [m for m in rescored if "anonymousId" not in m]
    assert len(from_ipqs) == 1 and from_ipqs[0]["userId"] == "shopper-r"
    assert from_ipqs[0]["timestamp"] == "2026-11-01T12:03:00.000Z"
    rescored = [m for m in rescored if m not in from_ipqs]
    assert len({m["messageId"] for m in rescored}) == 3  # stable per model and request
    assert {m["timestamp"] for m in rescored} == {
        "2026-11-01T12:00:00.000Z",
        "2026-11-01T12:01:00.000Z",
        "2026-11-01T12:02:00.000Z",
    }
    assert all(m["traits"]["fraud_action"] == "block" for m in rescored)
    assert all(m["userId"] == "shopper-r" and m["anonymousId"] == visitor for m in rescored)


def test_rescore_command_line_emits_identifies_to_the_outbox(
    settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    events = tmp_path / "events.jsonl.gz"
    bodies = [body for kind, body in stream(80) if kind != "ipqs"][:30]
    with gzip.open(events, "wb") as packed:
        packed.write(b"\n".join(bodies) + b"\n")
    env = clean_environment(
        {
            "RISKWIRE_REDIS_URL": redis_url,
            "RISKWIRE_REDIS_PREFIX": settings.redis_prefix,
        }
    )
    output = tmp_path / "scored.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "service", "rescore", "--input", str(events),
         "--output", str(output), "--emit", "--quiet"],
        env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    assert summary["events"] == 30 and summary["emitted"] == 30
    messages = [json.loads(m) for m in queued(settings)]
    scored = {
        json.loads(line)["requestId"]: json.loads(line) for line in output.read_text().splitlines()
    }
    assert len(messages) == 30
    for message in messages:
        assert message["type"] == "identify"
        assert message["messageId"].startswith("rw-rescore-")
        assert message["traits"]["fraud_score"] in {row["score"] for row in scored.values()}
    # Dated at the events (historic), not at the rescoring.
    assert {m["timestamp"] for m in messages} == {row["time"] for row in scored.values()}


def test_each_run_counts_reuse_from_an_empty_store(settings: Settings) -> None:
    """The reuse store lives for one run (it is freed before the collector's thresholds are
    put back): a run after another scores its lines as a fresh rescorer does, without the
    earlier run's devices, users and IPs."""
    _, model, thresholds = load_model(settings)
    lines = [body for _, body in stream(300)]
    rescorer = Rescorer(settings, model, thresholds)
    rescorer.run(iter(lines[:200]), io.BytesIO(), io.BytesIO())
    second, fresh = io.BytesIO(), io.BytesIO()
    rescorer.run(iter(lines[100:]), second, io.BytesIO())
    Rescorer(settings, model, thresholds).run(iter(lines[100:]), fresh, io.BytesIO())
    assert second.getvalue() == fresh.getvalue()


def test_a_rows_ranking_integer_stands_for_its_reasons_alone() -> None:
    """Rows share a ranking integer (and so the list of codes their lines encode) exactly
    when the model ranks the same reasons for them, also when one row's reasons lead
    another's (one reason against two, three...)."""
    _, model, thresholds = load_model(Settings())
    rng = np.random.default_rng(4)
    xs = rng.choice([0.0, 0.0, 0.0, 0.5, 1.0], size=(600, len(model.artifact.feature_spec.names)))
    xs[:40] = 0.0  # no reason at all
    for row in range(40, 240):  # one to three features present: fewer reasons than five
        kept = rng.choice(xs.shape[1], size=row % 3 + 1, replace=False)
        xs[row] = np.where(np.isin(np.arange(xs.shape[1]), kept), 1.0, 0.0)
    verdicts = _Verdicts(model, thresholds, xs, {})
    ranked, _ = model.ranked_reasons(xs)
    assert [tuple(verdicts.reasons(row)) for row in range(len(xs))] == ranked
    assert len(set(zip(verdicts.rankings, ranked, strict=True))) == len(set(ranked))
    assert len(set(verdicts.rankings)) == len(set(ranked)) > 50
    assert {len(r) for r in ranked} >= {0, 1, 2, 5}


@pytest.mark.parametrize("features", [64, 20_000])
def test_ranking_keys_are_exact_past_what_an_int64_holds(features: int) -> None:
    """Two rankings share a key only when they are the same reasons in the same order, also
    for a spec so wide that five digits in its base overflow an int64 (20,001**5 > 2**63)."""
    rng = np.random.default_rng(9)
    picked = rng.integers(0, features, size=(400, 5))
    picked[:50] = features - 1  # the widest digits, where an int64 would wrap
    counts = rng.integers(0, 6, size=400)
    keys = ranking_keys(picked, counts, features)
    rankings = [tuple(row[:n]) for row, n in zip(picked.tolist(), counts.tolist(), strict=True)]
    assert len(set(keys)) == len(set(rankings))
    assert len(set(zip(keys, rankings, strict=True))) == len(set(rankings))
    assert all(key >= 0 for key in keys)


def queued(settings: Settings) -> list[bytes]:
    """The messages in the outbox, oldest first."""
    client = sync_redis.Redis.from_url(settings.redis_url)
    try:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            client.xrange(Keys(settings.redis_prefix).outbox),
        )
    finally:
        client.close()
    return [fields[b"m"] for _, fields in entries]


def test_the_feed_queues_each_full_batch_at_once_and_the_rest_on_leaving(
    settings: Settings,
) -> None:
    messages = [b'{"n":%d}' % n for n in range(25)]
    seen = []
    with OutboxFeed(settings, batch=10) as feed:
        for message in messages:
            feed.append(message)
            seen.append(len(queued(settings)))
    # Nothing waits for the end: each tenth message sends its batch, in order.
    assert seen == [0] * 9 + [10] * 10 + [20] * 6
    assert queued(settings) == messages


def test_a_feed_left_by_an_error_does_not_queue_what_it_holds(settings: Settings) -> None:
    with pytest.raises(KeyError), OutboxFeed(settings, batch=10) as feed:
        feed.append(b'{"n":1}')
        raise KeyError("the run failed")
    assert queued(settings) == []


def test_a_redis_that_does_not_answer_stops_emit_before_any_rescoring(
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_riskwire_env: None,
) -> None:
    unreachable = f"redis://:sekret-password@127.0.0.1:{free_port()}/0"
    down = msgspec.structs.replace(settings, redis_url=unreachable, redis_timeout_s=0.5)
    with pytest.raises(EmitError, match="did not answer") as refused:
        OutboxFeed(down).__enter__()
    assert "sekret-password" not in str(refused.value)

    events = tmp_path / "events.jsonl.gz"
    with gzip.open(events, "wb") as packed:
        packed.writelines(
            e.body + b"\n" for e in simulate(SimulationConfig(seed=5, days=1, scale=0.05))
        )
    monkeypatch.setenv("RISKWIRE_REDIS_URL", unreachable)
    monkeypatch.setenv("RISKWIRE_REDIS_TIMEOUT_S", "0.5")
    output = tmp_path / "scored.jsonl"
    code = main(["--input", str(events), "--output", str(output), "--emit", "--quiet"])
    assert code == 1
    error = capsys.readouterr().err
    assert "--emit: Redis (RISKWIRE_REDIS_URL) did not answer" in error
    assert "sekret-password" not in error
    assert not output.exists()  # refused before a line was scored


def test_peak_memory_does_not_grow_with_the_input_with_emit_on(settings: Settings) -> None:
    """Three times the days (past the widest window, so the store turns over) at the same
    rate: about the same peak, with the identifies queued as they come."""
    _, model, thresholds = load_model(settings)
    peaks = []
    for days in STEADY_DAYS:
        lines = list(steady_ipqs_stream(days))
        with OutboxFeed(settings, batch=500) as feed:
            peaks.append(rescore_peak_bytes(settings, model, thresholds, lines, feed))
    assert len(queued(settings)) == sum(STEADY_DAYS) * 100  # an identify per IPQS result
    # Holding the identifies until the end (as --emit once did) adds ~0.6 KB per event:
    # ~14 MiB more for the longer stream, on a peak under 10 MiB.
    assert peaks[1] <= RESCORE_MEMORY_MAX_GROWTH * peaks[0], [p / 2**20 for p in peaks]


def test_an_unreadable_input_stops_the_command_with_a_one_line_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_riskwire_env: None,
) -> None:
    """A corrupt gzip file fails with exit 1 and the reason, no traceback and no summary; a
    missing one is refused before anything runs."""
    corrupt = tmp_path / "events.jsonl.gz"
    corrupt.write_bytes(b'{"requestId": "not compressed"}\n')
    output = tmp_path / "scored.jsonl"
    assert main(["--input", str(corrupt), "--output", str(output), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("the input cannot be read: Not a gzipped file")
    assert "Traceback" not in captured.err and captured.out == ""

    with pytest.raises(SystemExit) as refused:
        main(["--input", str(tmp_path / "missing.jsonl"), "--output", str(output)])
    assert refused.value.code == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_an_output_that_would_overwrite_the_input_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_riskwire_env: None,
) -> None:
    """Opening the output (or its rejects file) for writing would empty the input first:
    refused with exit status 2 and the input untouched; so is an output in no directory."""
    content = b"".join(body + b"\n" for _, body in stream(5))
    events = tmp_path / "events.jsonl"
    # An input named as the rejects file of an output ``scored.jsonl`` would be.
    rejects_named = tmp_path / "scored.jsonl.rejects.jsonl"
    for path in (events, rejects_named):
        path.write_bytes(content)
    (tmp_path / "link.jsonl").symlink_to(events)
    for source, output, problem in [
        (events, events, "would overwrite the input"),
        (events, tmp_path / "link.jsonl", "would overwrite the input"),
        (rejects_named, tmp_path / "scored.jsonl", "would overwrite the input"),
        (events, tmp_path / "missing" / "scored.jsonl", "no such directory"),
    ]:
        with pytest.raises(SystemExit) as refused:
            main(["--input", str(source), "--output", str(output), "--quiet"])
        assert refused.value.code == 2
        assert problem in capsys.readouterr().err
        assert source.read_bytes() == content
    assert not (tmp_path / "scored.jsonl").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--reorder-window", "-1"], "--reorder-window: a count of events, 0 or more, not '-1'"),
        (["--reorder-window", "many"], "--reorder-window: a count of events, 0 or more"),
        (["--review-threshold", "90", "--block-threshold", "80"], "0 <= review <= block <= 100"),
        (["--block-threshold", "101"], "--review-threshold / --block-threshold:"),
        (["--model", "missing-model.json"], "cannot load model artifact missing-model.json"),
        (["--compare-model", "missing-model.json"], "cannot load model artifact"),
    ],
)
def test_bad_options_are_refused_before_any_rescoring(
    arguments: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_riskwire_env: None,
) -> None:
    """Each with exit status 2 and the option's problem in one line, no traceback, and no
    output file."""
    monkeypatch.chdir(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(body + b"\n" for _, body in stream(5)))
    output = tmp_path / "scored.jsonl"
    with pytest.raises(SystemExit) as refused:
        main(["--input", str(events), "--output", str(output), "--quiet", *arguments])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not output.exists()
