"""The load: wrk for request rate and latency, curl for large bodies, and a crowd of idle
keep-alive connections held open by this process."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import cpu_seconds, rss_bytes, tree
from bench.servers import SMALL, Server

# wrk's own summary is for people; this prints the exact figures (microseconds) as JSON.
REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format(
    '\\n{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %.1f, "p99_us": %.1f, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Load:
    """How hard and how long: wrk's connections and seconds per run."""

    connections: int
    seconds: float
    wrk_cpus: set[int] | None  # the core(s) wrk runs on, None for any


def wrk(server: Server, load: Load, connections: int | None, script: Path) -> dict[str, float]:
    """One wrk run against `server`'s small page; rate, latency and the server's CPU time."""
    conns = connections or load.connections
    whole = max(1, math.ceil(load.seconds))  # wrk takes whole seconds: SIGINT ends it sooner
    args = ["wrk", "-t1", f"-c{conns}", f"-d{whole}s", "-s", str(script)]
    for name, value in server.headers.items():
        args += ["-H", f"{name}: {value}"]
    args.append(f"{server.url}/{SMALL}")
    before, started = [cpu_seconds(pid) for pid in server.pids], time.monotonic()
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if (cpus := load.wrk_cpus) else None,
    )
    try:
        stdout, stderr = process.communicate(timeout=load.seconds if load.seconds < whole else None)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # wrk stops and reports, as after its duration
        stdout, stderr = process.communicate()
    spent = [cpu_seconds(pid) - was for pid, was in zip(server.pids, before, strict=True)]
    cpu = sum(spent)
    wall = time.monotonic() - started
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk failed against {server.name}: {stdout}{stderr}")
    report = json.loads(lines[-1])
    failed = sum(report[k] for k in ("connect_errors", "read_errors", "write_errors"))
    if report["status_errors"] or failed or report["requests"] == 0:
        raise RuntimeError(f"wrk against {server.name}: errors or no answers: {report}")
    requests = report["requests"]
    return {
        "requests": requests,
        "requests_per_s": requests / (report["duration_us"] / 1e6),
        "cpu_us_per_request": cpu * 1e6 / requests,
        "cpu_seconds": cpu,
        # of which the processes measured with it (a front proxy's gateway)
        "also_cpu_us_per_request": sum(spent[1:]) * 1e6 / requests,
        "wall_seconds": wall,
        "bytes_per_response": report["bytes"] / requests,
        "p50_ms": report["p50_us"] / 1000,
        "p99_ms": report["p99_us"] / 1000,
        "mean_ms": report["mean_us"] / 1000,
    }


class PeakRss:
    """The highest resident memory of a process tree while a transfer runs: the kernel's high
    water mark (VmHWM, reset through /proc/PID/clear_refs), or where that is not allowed, a
    2 ms poll of VmRSS (which can miss a short peak)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_bytes(pid)
        self.peak = self.before
        self.reset = self._reset_hwm()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _reset_hwm(self) -> bool:
        try:
            for member in tree(self.pid):
                Path(f"/proc/{member}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def _hwm(self) -> int:
        total = 0
        for member in tree(self.pid):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        return total

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        if not self.reset:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.reset:
            self.peak = max(self.peak, self._hwm())
        else:
            self._stop.set()
            self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


def transfer(server: Server, direction: str, size: int, upload_file: Path) -> dict[str, float]:
    """One body of `size` bytes through `server` with curl: down (a static file from nginx) or
    up (a POST that the upstream passes to the sink); throughput and peak memory growth."""
    args = ["curl", "-sS", "-o", "/dev/null", "--max-time", "300", "-H", "Expect:"]
    for name, value in server.headers.items():
        args += ["-H", f"{name}: {value}"]
    if direction == "down":
        args += ["-w", "%{http_code} %{size_download} %{time_total}", f"{server.url}/big.bin"]
    else:
        args += ["-X", "POST", "-T", str(upload_file)]
        args += ["-w", "%{http_code} %{size_upload} %{time_total}", f"{server.url}/sink"]
    with PeakRss(server.pid) as memory:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 3 or fields[0] != "200" or int(fields[1]) != size:
        raise RuntimeError(f"{direction} through {server.name} failed: {done.stdout}{done.stderr}")
    seconds = float(fields[2])
    return {
        "mb_per_s": size / seconds / 1e6,
        "seconds": seconds,
        "memory_growth_mb": memory.growth / 1e6,
    }


def transfers(
    server: Server, direction: str, size: int, upload_file: Path, times: int
) -> dict[str, float]:
    """`times` transfers one after the other: the median throughput (one 100 MB transfer takes
    well under a second, so a single one is at the mercy of whatever else the kernel runs) and
    the largest memory growth."""
    runs = [transfer(server, direction, size, upload_file) for _ in range(times)]
    return {
        "mb_per_s": statistics.median(run["mb_per_s"] for run in runs),
        "seconds": statistics.median(run["seconds"] for run in runs),
        "memory_growth_mb": max(run["memory_growth_mb"] for run in runs),
        "transfers": len(runs),
    }


async def _hold(server: Server, count: int, settle: float) -> dict[str, float]:
    host, port = server.url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in server.headers.items())
    request = f"GET /{SMALL} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    held: list[asyncio.StreamWriter] = []
    batch = asyncio.Semaphore(32)  # few at once: the proxies' upstream pools stay small

    async def one() -> None:
        async with batch:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{server.name}: {head[:200]!r}")
            lengths = [
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if lengths:
                await reader.readexactly(lengths[0])
            else:  # chunked
                await reader.readuntil(b"\r\n0\r\n\r\n")
            held.append(writer)

    try:
        await asyncio.sleep(settle)
        before = rss_bytes(server.pid)
        await asyncio.gather(*(one() for _ in range(count)))
        await asyncio.sleep(settle)  # let the server finish with each request's objects
        after = rss_bytes(server.pid)
    finally:
        for writer in held:
            writer.close()
    return {
        "connections": len(held),
        "rss_before_mb": before / 1e6,
        "rss_after_mb": after / 1e6,
        "kb_per_connection": (after - before) / len(held) / 1024,
    }


def idle_connections(server: Server, count: int, settle: float) -> dict[str, float]:
    """Open `count` keep-alive connections, one request on each (answered), then leave them idle
    and compare the server's resident memory before and after."""
    return asyncio.run(_hold(server, count, settle))
