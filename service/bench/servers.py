"""The servers under load: separate uvicorn processes started as production starts them."""

from __future__ import annotations

import http.client
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from service.bench.payloads import REPO_ROOT
from service.http_protocol import UVICORN_HTTP
from service.redis_server import free_port

SERVICE_FACTORY = "service.app:app_from_env"
BASELINE_FACTORY = "service.bench.baseline_app:create_baseline_app"
STOP_GRACE_S = 10.0


class ServerError(RuntimeError):
    pass


def uvicorn_command(factory: str, port: int) -> list[str]:
    # The uvicorn next to this interpreter is the venv's: the one production runs.
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    return [
        uvicorn,
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        # Both servers: the baseline keeps the production HTTP layer, so the ratio stays the
        # service's own work.
        "--http",
        UVICORN_HTTP,
    ]


def clean_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any RISKWIRE_* of the caller's, plus ``settings``.

    A developer's own write key or secret must not leak into the benchmark: with a write key
    set the forwarder would post to Segment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKWIRE_")}
    env.update(settings)
    return env


@dataclass
class Server:
    name: str
    factory: str
    settings: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return uvicorn_command(self.factory, self.port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shell_command(self) -> str:
        """The command line as one could paste it, settings first."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.settings.items()))
        command = self.command
        uvicorn = Path(command[0])
        if uvicorn.is_relative_to(REPO_ROOT):
            command = [str(uvicorn.relative_to(REPO_ROOT)), *command[1:]]
        return (env + " " if env else "") + shlex.join(command)

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=clean_environment(self.settings),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, probe: tuple[str, str, bytes], timeout_s: float = 30.0) -> None:
        """Until ``probe`` (method, path, body) answers 200; fail early if the process died."""
        method, path, body = probe
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request(method, path, body=body or None)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.05)
        raise ServerError(f"{self.name} did not answer {method} {path} in {timeout_s:g} s")

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux), None if unknown."""
        if self.process is None:
            return None
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the parenthesised command name, which may itself hold spaces.
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
