"""The upload upstream: reads a request body to its end, drops it, and answers with its size.

python -m bench.sink PORT. nginx cannot take a POST to a static file, so the upstream nginx
passes /sink here; every target's upload goes the same way, the direct one included. It is a
bare asyncio protocol (no HTTP framework) so that it is not what limits the upload rate. Bodies
must come with Content-Length (curl -T sends it, and every proxy measured passes it on); a
chunked one is refused with 411, so that a mistake shows instead of skewing the figure.
"""

from __future__ import annotations

import asyncio
import sys


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.head = b""
        self.left: int | None = None  # body bytes still to come; None while reading the head
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        while data:
            if self.left is None:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = self.head[:end].lower(), self.head[end + 4 :]
                self.head, self.size = b"", 0
                lines = head.split(b"\r\n")
                lengths = [line for line in lines if line.startswith(b"content-length:")]
                if b"transfer-encoding:" in head or len(lengths) > 1:
                    self.answer(411, b"Content-Length required\n")
                    self.transport.close()
                    return
                self.left = int(lengths[0].split(b":")[1]) if lengths else 0
            taken = min(self.left, len(data))
            self.size += taken
            self.left -= taken
            data = data[taken:]
            if self.left == 0:
                self.left = None
                self.answer(200, b"%d\n" % self.size)

    def answer(self, status: int, body: bytes) -> None:
        head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n"
        self.transport.write(head % (status, len(body)) + body)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
