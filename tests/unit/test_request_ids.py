"""Fresh request ids: unpredictable, distinct, 32 hex digits, across many reads of entropy."""

from __future__ import annotations

import re
from itertools import islice

from service.logs import fresh_request_ids


def test_fresh_request_ids_are_distinct_hex_across_reads() -> None:
    # Over four reads of os.urandom (256 ids each), so block boundaries are crossed.
    ids = list(islice(fresh_request_ids(), 1000))
    assert all(re.fullmatch(r"[0-9a-f]{32}", one) for one in ids)
    assert len(set(ids)) == len(ids)


def test_two_apps_draw_different_ids() -> None:
    # Each middleware reads its own entropy: no sequence is shared or seeded alike.
    first = list(islice(fresh_request_ids(), 300))
    second = list(islice(fresh_request_ids(), 300))
    assert not set(first) & set(second)
