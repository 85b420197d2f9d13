"""The garbage collector while the app serves: startup objects frozen, young passes rare."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.collector import YOUNG_THRESHOLD, serving_collector
from service.settings import Settings


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*previous)


def test_raises_the_young_threshold_and_freezes_until_exit(
    default_threshold: tuple[int, int, int],
) -> None:
    with serving_collector(5_000):
        assert gc.get_threshold() == (5_000, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == default_threshold
    assert gc.get_freeze_count() == 0


def young_passes_during_a_burst() -> int:
    """Young-generation passes while 20,000 containers are alive at once (as objects of
    requests in flight are)."""
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            passes.append(1)

    gc.collect()
    gc.callbacks.append(count)
    try:
        alive = [[n] for n in range(20_000)]
    finally:
        gc.callbacks.remove(count)
    assert len(alive) == 20_000
    return len(passes)


def test_a_burst_below_the_threshold_runs_no_young_pass(
    default_threshold: tuple[int, int, int],
) -> None:
    assert young_passes_during_a_burst() > 0  # the default: one per 700 containers
    with serving_collector(50_000):
        assert young_passes_during_a_burst() == 0


def test_collection_turned_off_stays_off(default_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(0)
    with serving_collector(5_000):
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_threshold_changed_meanwhile_is_not_undone(
    default_threshold: tuple[int, int, int],
) -> None:
    with serving_collector(5_000):
        gc.set_threshold(9_000, 10, 10)
    assert gc.get_threshold() == (9_000, 10, 10)


async def test_the_app_serves_with_the_collector_set(
    settings: Settings, default_threshold: tuple[int, int, int]
) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/health")).status_code == 200
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == default_threshold
    assert gc.get_freeze_count() == 0
