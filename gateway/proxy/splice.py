"""Large response bodies moved from the application's socket to the client's inside the kernel.

Relaying a 100 MB download through Python costs two copies and a trip round the event loop per
64 KiB. On Linux, when both connections are plain TCP and the answer has a Content-Length,
splice(2) moves the bytes socket -> pipe -> socket without their ever reaching Python; the
gateway only waits for the sockets to be ready. Everything else (TLS on either side, chunked or
close-delimited bodies, small bodies, other systems) is streamed as before.

The application's connection is closed afterwards rather than pooled: its parser never saw the
body. The client's connection stays open for its next request, since exactly Content-Length
bytes were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket

import aiohttp
from aiohttp import web

from gateway.proxy.client import Answer

MIN_BODY = 1 << 20  # smaller bodies are not worth a pipe and four extra system calls
PIPE_SIZE = 1 << 20  # asked for; the kernel may give less (its pipe-max-size)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
AVAILABLE = hasattr(os, "splice")


def _length(answer: Answer) -> int | None:
    if "Transfer-Encoding" in answer.headers:
        return None
    values = answer.headers.getall("Content-Length", [])
    if len(values) != 1 or not (values[0].isascii() and values[0].isdigit()):
        return None
    return int(values[0])


def _framed_by_length(request: web.Request, response: web.StreamResponse, length: int) -> bool:
    """Whether the client's answer is framed by that same Content-Length: raw bytes written
    under chunked framing or compression would let the body end the answer early and pass for
    another one (an application listing Content-Length in Connection gets a chunked answer)."""
    writer = request.writer
    return (
        response.content_length == length
        and not response.chunked
        and not response.compression
        and not getattr(writer, "chunked", True)
        and getattr(writer, "_compress", None) is None
    )


def _plain_socket(transport: asyncio.BaseTransport | None) -> socket.socket | None:
    """The socket under a transport that is plain TCP (not TLS), else None."""
    if transport is None or transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    if transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock if sock is not None and sock.type == socket.SOCK_STREAM else None


async def relay_body(
    request: web.Request, response: web.StreamResponse, upstream: object, read_timeout: float | None
) -> bool:
    """Send `upstream`'s body to the client with splice(2) when both ends allow it; False (and
    nothing done) when they do not. The caller has made sure a body follows the headers (not
    HEAD, 1xx, 204 or 304, whose Content-Length describes another answer). Raises
    aiohttp.ClientError or TimeoutError as the streaming relay does, once the headers are out."""
    if not AVAILABLE or not isinstance(upstream, Answer):
        return False
    length = _length(upstream)
    protocol = upstream.protocol
    if length is None or protocol is None or not _framed_by_length(request, response, length):
        return False
    content = upstream.content
    remaining = length - content.total_bytes
    up_transport = protocol.transport
    up_sock, client_sock = _plain_socket(up_transport), _plain_socket(request.transport)
    if remaining < MIN_BODY or up_sock is None or client_sock is None or up_transport is None:
        return False
    # From here the application's socket is ours: nothing more reaches the parser. (Taking the
    # buffer may resume reading, so the pause comes after it, with no await in between.)
    buffered = content.read_nowait()
    up_transport.pause_reading()
    if buffered:
        await response.write(buffered)
    else:
        request.writer.send_headers()
    await _flushed(request)
    await _splice(up_sock.fileno(), client_sock.fileno(), remaining, read_timeout)
    upstream.close()
    return True


async def _flushed(request: web.Request) -> None:
    """Wait until the client transport's own buffer is empty: the pipe must not overtake it."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise aiohttp.ClientConnectionResetError("the client went away")
    if not transport.get_write_buffer_size():
        return
    high, low = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        await request.writer.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)
    if transport.get_write_buffer_size():
        raise aiohttp.ClientConnectionResetError("the client went away")


async def _splice(source: int, sink: int, remaining: int, read_timeout: float | None) -> None:
    loop = asyncio.get_running_loop()
    # Duplicates, so waiting on them does not disturb the transports' own registrations.
    src, dst = os.dup(source), os.dup(sink)
    pipe_r, pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe_w, _F_SETPIPE_SZ, PIPE_SIZE)
        capacity = fcntl.fcntl(pipe_w, _F_GETPIPE_SZ)
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        in_pipe = 0
        while remaining or in_pipe:
            read_blocked = write_blocked = False
            moved = sent = 0
            if remaining and in_pipe < capacity:
                try:
                    moved = os.splice(src, pipe_w, min(remaining, capacity - in_pipe), flags=flags)
                except BlockingIOError:
                    read_blocked = True
                except OSError as exc:
                    raise aiohttp.ClientPayloadError(
                        f"the application's body failed: {exc}"
                    ) from exc
                else:
                    if moved == 0:
                        raise aiohttp.ClientPayloadError("the application closed mid-body")
                    remaining -= moved
                    in_pipe += moved
            if in_pipe:
                try:
                    sent = os.splice(pipe_r, dst, in_pipe, flags=flags)
                except BlockingIOError:
                    write_blocked = True
                except OSError as exc:
                    raise aiohttp.ClientConnectionResetError(
                        f"the client went away: {exc}"
                    ) from exc
                else:
                    in_pipe -= sent
            if not (moved or sent):  # both ends would block: wait for either to be ready
                await _ready(
                    loop,
                    src if read_blocked else None,
                    dst if write_blocked else None,
                    read_timeout,
                )
    finally:
        for fd in (src, dst, pipe_r, pipe_w):
            os.close(fd)


async def _ready(
    loop: asyncio.AbstractEventLoop,
    readable: int | None,
    writable: int | None,
    timeout: float | None,
) -> None:
    """Until `readable` can be read or `writable` written; TimeoutError after `timeout` seconds
    (only ever given while waiting on the application alone)."""
    woken: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    if readable is not None:
        loop.add_reader(readable, wake)
    if writable is not None:
        loop.add_writer(writable, wake)
    try:
        async with asyncio.timeout(timeout if writable is None else None):
            await woken
    finally:
        if readable is not None:
            loop.remove_reader(readable)
        if writable is not None:
            loop.remove_writer(writable)
