"""Bodies stream through the gateway both ways: byte for byte, and in bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.proxy.helpers import BYPASS_POLICIES, bypass_app
from tests.proxy.upstream import SEEN, pattern, pattern_digest
from tests.support import GatewayProcess, settings_dict

GIB = 1 << 30
MIB = 1 << 20
RSS_BUDGET = 16 * MIB


class Sampler:
    """The gateway process's resident memory, sampled every 100 ms while a transfer runs."""

    def __init__(self, process: GatewayProcess) -> None:
        self.process = process
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.rss())
            await asyncio.sleep(0.1)

    def __enter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.process.rss())


async def generated(size: int, digest: Any) -> AsyncIterator[bytes]:
    for piece in pattern(size):
        digest.update(piece)
        yield piece


async def test_gigabyte_up_and_down_in_bounded_memory(
    tmp_path: Path, upstream: TestServer, upstream_url: str
) -> None:
    """1 GiB up and 1 GiB down through a gateway process arrive intact while its RSS grows < 16 MB."""
    settings = settings_dict(tmp_path, {"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    gateway = await asyncio.to_thread(GatewayProcess.run, tmp_path, settings)
    try:
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Warm up the gateway's upstream pool and code paths before the baseline.
            for _ in range(3):
                async with session.post(f"{gateway.url}/upload", data=b"warm" * 1000) as warm:
                    assert warm.status == 200
                async with session.get(f"{gateway.url}/download?size={MIB}") as warm:
                    assert len(await warm.read()) == MIB
            baseline = gateway.rss()
            started = time.monotonic()
            with Sampler(gateway) as sampler:
                sent = hashlib.sha256()
                async with session.post(
                    f"{gateway.url}/upload", data=generated(GIB, sent)
                ) as response:
                    assert response.status == 200
                    received = await response.json()
                up_done = time.monotonic()
                got = hashlib.sha256()
                length = 0
                async with session.get(f"{gateway.url}/download?size={GIB}") as response:
                    assert response.status == 200
                    assert response.headers["Content-Length"] == str(GIB)
                    async for piece in response.content.iter_chunked(MIB):
                        got.update(piece)
                        length += len(piece)
            finished = time.monotonic()
        growth = sampler.peak - baseline
        print(
            f"\n1 GiB up {up_done - started:.1f}s, down {finished - up_done:.1f}s; gateway RSS "
            f"baseline {baseline / MIB:.1f} MiB, peak growth {growth / MIB:.1f} MiB"
        )
        assert received["length"] == GIB
        assert received["sha256"] == sent.hexdigest()
        assert length == GIB
        assert got.hexdigest() == sent.hexdigest() == pattern_digest(GIB)
        assert growth <= RSS_BUDGET, f"gateway RSS grew by {growth / MIB:.1f} MiB"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(gateway.stop)


async def test_download_with_length_and_chunked(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """A download with Content-Length keeps its length and a chunked one stays chunked, intact."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    size = 8 * MIB + 123
    expected = pattern_digest(size)
    fixed = await client.get(f"/download?size={size}")
    assert fixed.headers["Content-Length"] == str(size)
    assert "Transfer-Encoding" not in fixed.headers
    assert hashlib.sha256(await fixed.read()).hexdigest() == expected
    chunked = await client.get(f"/download?size={size}&chunked=1")
    assert "Content-Length" not in chunked.headers
    assert chunked.headers["Transfer-Encoding"] == "chunked"
    assert hashlib.sha256(await chunked.read()).hexdigest() == expected


async def test_upload_with_length_keeps_length(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """An upload with Content-Length reaches upstream with that length (not re-chunked), intact."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    body = b"".join(pattern(3 * MIB + 7))
    response = await client.post("/upload", data=io.BytesIO(body))
    result = await response.json()
    assert result["length"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    seen = dict((k.lower(), v) for k, v in upstream.app[SEEN][-1]["headers"])
    assert seen.get("content-length") == str(len(body))
    assert "transfer-encoding" not in seen
