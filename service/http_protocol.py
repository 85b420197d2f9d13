"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes a response's head (status line and headers) and its body separately: two
``send`` calls and two TCP segments per answer, and a client that reads the head first
is woken twice. On the benchmark's virtual machine a ``send`` that wakes its reader is
the most expensive system call there is (perf, /v1/score at c=1: ``sock_def_readable`` waking
the peer was a fifth of the server's CPU samples), so the head waits for the body here.

The head is held, never reordered or dropped: it leaves with the next write, before a
close, or at the latest on the event loop's next pass (a streaming response whose body
is not ready yet). Production, ``make run`` and the benchmark's two servers select it
(``uvicorn --http service.http_protocol:OneWriteProtocol``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn's ``--http`` takes an import path as well as its own names.
UVICORN_HTTP = "service.http_protocol:OneWriteProtocol"
_HEAD_START = b"HTTP/"
_HEAD_END = b"\r\n\r\n"


class HeldHead:
    """A transport that holds a write that looks like a response head (or the interim
    ``100 Continue``) until the next write, close or loop pass; everything else is the
    transport's own. A body mistaken for a head is only sent a loop pass later."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[:5] == _HEAD_START and data[-4:] == _HEAD_END:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            # A peer that went away between the head and the loop pass: uvloop refuses a
            # write to a closed transport, and there is nobody left to read it.
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # The rest (is_closing, get_extra_info, pause_reading, set_protocol, ...) as is.
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through ``HeldHead``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held: Any = HeldHead(transport, self.loop)
        super().connection_made(held)
