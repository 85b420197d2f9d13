"""The bench's reading of the machine: CPU time stolen by the hypervisor during a run."""

from __future__ import annotations

from service.bench.machine import CpuTimes, parse_cpu_times

# /proc/stat as Linux writes it: the aggregate line, then one per CPU.
STAT = """cpu  267487 0 34582 716956 3067 0 15607 17633 0 0
cpu0 133000 0 17000 358000 1500 0 7800 8800 0 0
intr 123456 0 0
"""


def test_the_aggregate_line_gives_all_ticks_and_the_stolen_ones() -> None:
    times = parse_cpu_times(STAT)
    assert times == CpuTimes(total=267487 + 34582 + 716956 + 3067 + 15607 + 17633, steal=17633)


def test_steal_share_is_of_the_time_between_two_readings() -> None:
    before = CpuTimes(total=1000, steal=10)
    assert before.steal_share(CpuTimes(total=1800, steal=210)) == 0.25
    assert before.steal_share(CpuTimes(total=1000, steal=10)) is None  # no time passed


def test_a_stat_without_the_aggregate_line_gives_nothing() -> None:
    assert parse_cpu_times("cpu0 1 2 3 4 5 6 7 8\n") is None
    assert parse_cpu_times("cpu  1 2 3\n") is None  # a kernel too old to count steal
