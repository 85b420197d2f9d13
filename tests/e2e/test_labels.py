"""Label feedback: outcomes recorded by API, joined with the feature log, ready to train on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.app import identifier_policy, load_model
from service.features import FeatureSpec
from service.keys import Keys
from service.labels import LabelStore
from service.settings import Settings
from service.training import load_exported
from tests.e2e.test_scoring import AUTH, minute, post
from tests.payloads import clean_v3


async def label(client: AsyncTestClient[Litestar], *items: dict[str, Any]) -> Any:
    return await client.post("/v1/labels", json={"labels": list(items)}, headers=AUTH)


async def test_labels_join_the_feature_log_by_request_user_and_visitor(
    client: AsyncTestClient[Litestar], settings: Settings, redis_client: Redis, tmp_path: Path
) -> None:
    events = [
        clean_v3("req-a", "DeviceLabel000000001", "user-a", minute(0)),
        clean_v3("req-b", "DeviceLabel000000002", "user-b", minute(1)),
        clean_v3("req-c", "DeviceLabel000000003", "user-c", minute(2)),
        clean_v3("req-d", "DeviceLabel000000004", "user-d", minute(3)),
    ]
    for body in events:
        await post(client, body)
    response = await label(
        client,
        {"requestId": "req-a", "label": "chargeback"},
        {"userId": "user-b", "label": "legit"},
        {"visitorId": "DeviceLabel000000003", "label": "account_takeover"},
        # A user label loses to the request's own label.
        {"userId": "user-a", "label": "legit"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 4}

    keys = Keys(settings.redis_prefix)
    store = LabelStore(redis_client, keys, identifier_policy(settings, redis_client, keys), 100)
    spec, _, _ = load_model(settings)
    out = tmp_path / "training.jsonl"
    counts = await store.export(out, spec.hash)
    assert counts == {"rows": 3, "skipped_unlabeled": 1, "skipped_other_spec": 0}
    rows = {row["requestId"]: row for row in map(json.loads, out.read_bytes().splitlines())}
    assert {rid: (r["label"], r["labelName"], r["labelSource"]) for rid, r in rows.items()} == {
        "req-a": (1, "chargeback", "request"),
        "req-b": (0, "legit", "user"),
        "req-c": (1, "account_takeover", "device"),
    }
    assert all(len(r["features"]) == len(spec) for r in rows.values())
    data = load_exported(out, FeatureSpec(settings.reuse_window_labels))
    assert data.x.shape == (3, len(spec)) and data.y.tolist() == [1, 0, 1]
    everything = tmp_path / "all.jsonl"
    assert (await store.export(everything, spec.hash, include_unlabeled=True))["rows"] == 4
    # The log holds hashes, never the raw user ids or visitor ids.
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange(keys.feature_log)
    )
    assert len(entries) == 4
    raw = b"".join(field for _, entry in entries for field in entry.values())
    assert b"user-a" not in raw and b"DeviceLabel" not in raw


async def test_bad_labels_are_refused_with_the_field(client: AsyncTestClient[Litestar]) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"labels": [{"label": "fraud"}]}, 422, "$.labels[0]"),
        ({"labels": [{"label": "fraud", "userId": "u", "visitorId": "v"}]}, 422, "$.labels[0]"),
        ({"labels": [{"label": "maybe", "userId": "u"}]}, 422, "$.labels[0].label"),
        ({"labels": [{"label": "fraud", "userId": "anonymous"}]}, 422, "$.labels[0]"),
        ({"labels": []}, 422, "$.labels"),
        ({"labels": [{"label": "fraud", "userId": "u", "extra": 1}]}, 422, "$.labels[0]"),
    ]
    for body, status, field in cases:
        response = await client.post("/v1/labels", json=body, headers=AUTH)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["field"] == field
    unauthenticated = await client.post("/v1/labels", json={"labels": []})
    assert unauthenticated.status_code == 401
