"""What the numbers were measured on: they only compare with runs on a similar machine."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    kernel: str
    python: str
    redis: str
    wrk: str
    packages: str

    def lines(self) -> list[str]:
        return [
            f"CPU: {self.cpu}, {self.cores} cores",
            f"RAM: {self.ram_gib:.1f} GiB",
            f"OS: Linux {self.kernel}",
            f"Python: {self.python} ({self.packages})",
            f"Redis: {self.redis} (same host, loopback)",
            f"Load generator: {self.wrk}",
        ]


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class CpuTimes:
    """The whole machine's CPU time so far (``/proc/stat``, in clock ticks): all of it, and
    the part the hypervisor gave to other guests while this one wanted to run (steal)."""

    total: int
    steal: int

    def steal_share(self, later: CpuTimes) -> float | None:
        """The share of the time between ``self`` and ``later`` that was stolen."""
        spent = later.total - self.total
        return (later.steal - self.steal) / spent if spent > 0 else None


def parse_cpu_times(stat: str) -> CpuTimes | None:
    """The aggregate ``cpu`` line of ``/proc/stat``: user nice system idle iowait irq
    softirq steal [guest guest_nice]; guest time is already counted in user and nice."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) >= 9:
            ticks = [int(value) for value in fields[1:9]]
            return CpuTimes(total=sum(ticks), steal=ticks[7])
    return None


def cpu_times() -> CpuTimes | None:
    try:
        return parse_cpu_times(Path("/proc/stat").read_text())
    except OSError:
        return None


def _wrk_version(wrk: str) -> str:
    # wrk has no version flag: an unknown one prints the usage, headed by the version.
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def describe(redis_version: str, wrk: str) -> Machine:
    memory = _proc_field("/proc/meminfo", "MemTotal") or "0 kB"
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("litestar", "msgspec", "uvicorn", "redis")
    )
    return Machine(
        cpu=_proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        cores=os.cpu_count() or 0,
        ram_gib=int(memory.split()[0]) / (1024 * 1024),
        kernel=platform.release(),
        python=platform.python_version(),
        redis=redis_version,
        wrk=_wrk_version(wrk),
        packages=versions,
    )
