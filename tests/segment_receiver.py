"""A local HTTP server that behaves like Segment's Tracking API ``POST /v1/batch``.

It checks what Segment checks (Basic auth with the write key as user and an empty password,
JSON, 32 KB a message, 500 KB and 2,500 messages a batch) and answers 200 / 400 / 401, or
whatever a test scripts next (429 with Retry-After, 500, a hang past the client timeout).
Accepted batches are recorded for assertions.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500


class Scripted:
    def __init__(self, status: int, headers: dict[str, str] | None = None, hang_s: float = 0):
        self.status = status
        self.headers = headers or {}
        self.hang_s = hang_s


class SegmentReceiver:
    def __init__(self, write_key: str) -> None:
        self.write_key = write_key
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.statuses: list[int] = []
        self.script: deque[Scripted] = deque()
        self.reject_message_ids: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                receiver._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SegmentReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for batch in self.accepted for m in batch["batch"]]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.01)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode()
        with self._lock:
            self.statuses.append(status)
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", "0"))
        raw = handler.rfile.read(length)
        with self._lock:
            self.requests += 1
            scripted = self.script.popleft() if self.script else None
        if handler.path != "/v1/batch":
            return self._answer(handler, 404, {"success": False, "message": "not found"})
        expected = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        if handler.headers.get("authorization") != expected:
            return self._answer(handler, 401, {"success": False, "message": "invalid write key"})
        if len(raw) > MAX_BATCH_BYTES:
            return self._answer(handler, 400, {"success": False, "message": "batch too large"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(handler, 400, {"success": False, "message": "invalid JSON"})
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, list) or len(batch) > MAX_BATCH_MESSAGES:
            return self._answer(handler, 400, {"success": False, "message": "invalid batch"})
        for message in batch:
            if len(json.dumps(message, separators=(",", ":")).encode()) > MAX_MESSAGE_BYTES:
                return self._answer(
                    handler, 400, {"success": False, "message": "message too large"}
                )
            if message.get("messageId") in self.reject_message_ids:
                return self._answer(handler, 400, {"success": False, "message": "invalid message"})
        if scripted is not None:
            if scripted.hang_s:
                time.sleep(scripted.hang_s)
            if scripted.status != 200:
                return self._answer(handler, scripted.status, {"success": False}, scripted.headers)
        with self._lock:
            self.accepted.append(body)
        return self._answer(handler, 200, {"success": True})
