"""The production server command (``python -m service run``) in a subprocess, for tests that
need real sockets: signals, chunked bodies."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from service.bench.servers import clean_environment
from service.redis_server import free_port


def start(
    env: dict[str, str], stderr: int = subprocess.DEVNULL, *, own_group: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server with ``env`` as its only RISKWIRE_* variables; (process, base URL).
    ``own_group``: in a process group of its own, as a shell job is, to signal it like a
    terminal's Ctrl-C does."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "run"],
        env=clean_environment(
            {
                **env,
                "RISKWIRE_PORT": str(port),
            }
        ),
        stderr=stderr,
        start_new_session=own_group,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError("the server did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
