"""``OneWriteProtocol``: a response's head leaves with its body in one write, and nothing is
held back, reordered or lost: through a recording transport, and through real uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from service.http_protocol import HeldHead, OneWriteProtocol
from service.redis_server import free_port

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording:
    """A transport that keeps what it is asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.calls.append(("abort", b""))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))

    def is_closing(self) -> bool:
        return self.closing


async def _held() -> tuple[HeldHead, Recording]:
    recording = Recording()
    transport: Any = recording
    return HeldHead(transport, asyncio.get_running_loop()), recording


async def test_head_and_body_leave_in_one_write() -> None:
    held, recording = await _held()
    held.write(HEAD)
    assert recording.calls == []
    held.write(b"{}")
    assert recording.calls == [("write", HEAD + b"{}")]
    await asyncio.sleep(0)  # the loop-pass fallback finds nothing left to send
    assert recording.calls == [("write", HEAD + b"{}")]


async def test_a_head_without_a_body_leaves_on_the_next_loop_pass() -> None:
    held, recording = await _held()
    held.write(HEAD)
    await asyncio.sleep(0)
    assert recording.calls == [("write", HEAD)]
    held.write(b"{}")
    assert recording.calls == [("write", HEAD), ("write", b"{}")]


async def test_close_and_eof_send_the_held_head_first_and_abort_drops_it() -> None:
    held, recording = await _held()
    held.write(HEAD)
    held.close()
    assert recording.calls == [("write", HEAD), ("close", b"")]
    held, recording = await _held()
    held.write(HEAD)
    held.write_eof()
    assert recording.calls == [("write", HEAD), ("write_eof", b"")]
    held, recording = await _held()
    held.write(HEAD)
    held.abort()
    await asyncio.sleep(0)
    assert recording.calls == [("abort", b"")]


async def test_a_head_held_while_the_peer_went_away_is_not_written() -> None:
    held, recording = await _held()
    held.write(HEAD)
    recording.closing = True
    await asyncio.sleep(0)
    assert recording.calls == []


async def test_other_writes_pass_straight_through_and_the_rest_is_the_transports() -> None:
    held, recording = await _held()
    held.write(b"5\r\nhello\r\n")  # a chunk, not a head
    held.write(b"HTTP/1.1 200 OK\r\n")  # a head's start without its end: not held either
    assert recording.calls == [("write", b"5\r\nhello\r\n"), ("write", b"HTTP/1.1 200 OK\r\n")]
    assert held.is_closing() is False


# -- through uvicorn ------------------------------------------------------------------------


async def _app(scope: dict[str, Any], receive: Any, send: Any, released: threading.Event) -> None:
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/echo":
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        # The head goes first and the body waits until the client has seen it: a head held
        # for the body would leave both waiting for ever.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.get_running_loop().run_in_executor(None, released.wait, 5)
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def server() -> Iterator[tuple[int, threading.Event]]:
    port = free_port()
    released = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _app(scope, receive, send, released)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=OneWriteProtocol, lifespan="off", log_level="error"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.started
    try:
        yield port, released
    finally:
        released.set()
        running.should_exit = True
        thread.join(timeout=10)


def _receive_until(
    sock: socket.socket, buffer: bytearray, enough: Callable[[bytearray], bool]
) -> None:
    """Appends what arrives to ``buffer`` until ``enough`` (the socket's timeout fails it)."""
    while not enough(buffer):
        buffer += sock.recv(65536)


def _has_head(buffer: bytearray) -> bool:
    return b"\r\n\r\n" in buffer


def _has_last_chunk(buffer: bytearray) -> bool:
    return buffer.endswith(b"0\r\n\r\n")


def _read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """One response off the connection (content-length or chunked), leaving what follows."""
    _receive_until(sock, buffer, _has_head)
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    end = len(head) + 4
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        _receive_until(sock, buffer, _has_last_chunk)
        end = len(buffer)
    elif b"content-length:" in lowered:
        length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
        _receive_until(sock, buffer, lambda received: len(received) >= end + length)
        end += length
    response = bytes(buffer[:end])
    del buffer[:end]
    return response


def test_keep_alive_responses_arrive_whole_and_in_order(
    server: tuple[int, threading.Event],
) -> None:
    port, _ = server
    big = b"x" * 300_000  # past the socket buffer: the transport's flow control takes over
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        buffer = bytearray()
        for body in (b"first", big, b"", b"third"):
            request = b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body)
            sock.sendall(request + body)
            response = _read_response(sock, buffer)
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            assert response.endswith(b"\r\n\r\n" + body)
        sock.sendall(b"HEAD /echo HTTP/1.1\r\nhost: t\r\n\r\nGET /none HTTP/1.1\r\nhost: t\r\n\r\n")
        head = _read_response(sock, buffer)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert _read_response(sock, buffer).startswith(b"HTTP/1.1 204 No Content\r\n")
        assert buffer == b""


def test_interim_continue_then_the_answer(server: tuple[int, threading.Event]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
        )
        buffer = bytearray()
        _receive_until(sock, buffer, _has_head)
        assert bytes(buffer) == b"HTTP/1.1 100 Continue\r\n\r\n"
        buffer.clear()
        sock.sendall(b"body")
        assert _read_response(sock, buffer).endswith(b"\r\n\r\nbody")


def test_a_head_whose_body_is_late_is_not_held_for_it(server: tuple[int, threading.Event]) -> None:
    port, released = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        buffer = bytearray()
        _receive_until(sock, buffer, _has_head)  # times out (5 s) if the head waits for the body
        assert buffer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"late" not in buffer
        released.set()
        _receive_until(sock, buffer, _has_last_chunk)
        assert buffer.endswith(b"\r\n\r\n4\r\nlate\r\n0\r\n\r\n")
