"""The cyclic garbage collector, set for a server process that has finished starting up.

CPython runs a young-generation pass whenever the tracked objects allocated and not yet
freed exceed 700. A server with requests in flight holds more than that at any moment
(32 concurrent score requests do), so the default threshold made passes that walked live
requests, freed nothing and promoted them, and their promotions set off older passes: at
c=32, 547 young, 50 middle and 4 full passes per ~30,000 score requests, about 16 us a
request, the full ones ~90 ms each (measured with ``gc.callbacks`` under wrk). The
request path makes no reference cycles it relies on the collector to free, so passes can
be rare: with the young threshold at ``YOUNG_THRESHOLD`` none ran under the same load.

What the process built while starting (modules, the app, the model) lives until it exits:
``gc.freeze`` takes it out of every later pass, so a full pass walks only what came after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000


@contextmanager
def fewer_collections(young: int) -> Iterator[None]:
    """Raise the young threshold to ``young`` until exit.

    A threshold of 0 (automatic collection turned off) or one already above ``young`` is
    left alone; on exit the previous threshold comes back unless someone else has changed
    it meanwhile (another app in the same process, as in tests)."""
    previous = gc.get_threshold()
    raised = 0 < previous[0] < young
    if raised:
        gc.set_threshold(young, *previous[1:])
    try:
        yield
    finally:
        if raised and gc.get_threshold()[0] == young:
            gc.set_threshold(*previous)


@contextmanager
def serving_collector(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Freeze what exists now and raise the young threshold to ``young``
    (``fewer_collections``), until exit."""
    with fewer_collections(young):
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
