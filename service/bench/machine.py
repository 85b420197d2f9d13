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
