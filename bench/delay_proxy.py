"""A TCP proxy that holds every answer back for a while: Redis answering `delay_ms` later, as a
Redis across a network would. `python -m bench.delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS
CONTROL_PORT`.

It also counts: each read of the client's side is one round trip begun (a client sends a
command, or a pipeline of them, then waits), and a connection to CONTROL_PORT is answered with
the counts so far as one line of JSON, and the mean delay actually added (the event loop's
timers are no finer than a millisecond, so 1 ms comes out a little longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import asdict, dataclass


@dataclass
class Counts:
    round_trips: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    answers: int = 0
    added_delay_s: float = 0.0  # summed over the answers


async def _up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: Counts) -> None:
    try:
        while data := await reader.read(65536):
            counts.round_trips += 1
            counts.bytes_up += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _down(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, counts: Counts
) -> None:
    """Each chunk is written `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            arrived, data = await queue.get()
            if not data:
                return
            wait = arrived + delay - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            counts.added_delay_s += loop.time() - arrived
            counts.answers += 1
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            counts.bytes_down += len(data)
            queue.put_nowait((loop.time(), data))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait((loop.time(), b""))
        with contextlib.suppress(ConnectionError, OSError):
            await sender
        writer.close()


async def serve(listen: int, target: int, delay: float, control: int) -> None:
    counts = Counts()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _up(reader, up_writer, counts), _down(up_reader, writer, delay, counts)
        )

    async def report(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        figures = asdict(counts)
        figures["mean_added_delay_ms"] = counts.added_delay_s * 1000 / max(counts.answers, 1)
        writer.write((json.dumps(figures) + "\n").encode())
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(client, "127.0.0.1", listen, backlog=1024)
    status = await asyncio.start_server(report, "127.0.0.1", control)
    async with proxy, status:
        await asyncio.gather(proxy.serve_forever(), status.serve_forever())


def counts(control: int) -> dict[str, float]:
    """The counts of the proxy whose control port is `control`."""
    import socket

    with socket.create_connection(("127.0.0.1", control), timeout=5) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


def main(argv: list[str]) -> None:
    listen, target, delay_ms, control = argv
    asyncio.run(serve(int(listen), int(target), float(delay_ms) / 1000, int(control)))


if __name__ == "__main__":
    main(sys.argv[1:])
