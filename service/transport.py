"""Where batches go: Segment's HTTP Tracking API, or a local JSONL sink without a write key.

The forwarder only sees ``Transport``; tests point ``HttpTransport`` at a local server that
behaves like Segment instead of replacing it.
"""

from __future__ import annotations

import asyncio
import os
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import time
from typing import Protocol

import httpx
import msgspec


class SendResult(msgspec.Struct, frozen=True):
    """``status`` is None when no HTTP answer arrived (refused, reset, timed out)."""

    status: int | None
    retry_after_s: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Transport(Protocol):
    description: str

    async def send(self, body: bytes) -> SendResult: ...

    async def aclose(self) -> None: ...


class HttpTransport:
    def __init__(self, batch_url: str, write_key: str, timeout_s: float) -> None:
        self.description = f"Segment at {batch_url}"
        self._url = batch_url
        self._client = httpx.AsyncClient(
            auth=httpx.BasicAuth(write_key, ""),
            timeout=httpx.Timeout(timeout_s),
            headers={"content-type": "application/json", "user-agent": "riskwire"},
        )

    async def send(self, body: bytes) -> SendResult:
        try:
            response = await self._client.post(self._url, content=body)
        except httpx.HTTPError as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}")
        return SendResult(
            response.status_code,
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            error="" if response.is_success else response.text[:500],
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class FileSinkTransport:
    """Appends each batch body as one JSON line; a batch is acknowledged once it is on disk."""

    def __init__(self, path: str) -> None:
        self.description = f"local sink {path}"
        self._path = Path(path)

    async def send(self, body: bytes) -> SendResult:
        try:
            await asyncio.to_thread(self._append, body)
        except OSError as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}")
        return SendResult(200)

    def _append(self, body: bytes) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("ab") as sink:
            sink.write(body + b"\n")
            sink.flush()
            os.fsync(sink.fileno())

    async def aclose(self) -> None:
        return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None
