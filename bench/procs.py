"""Processes the benchmark starts, and what /proc says about them: CPU time, memory, cores."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
NOFILE = 20_000  # 5,000 client sockets, 5,000 upstream ones at worst, and room to spare


def raise_nofile(wanted: int = NOFILE) -> int:
    """Raise this process's open-file limit (children inherit it); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted and os.geteuid() == 0:  # root may raise the hard limit too
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            target = wanted
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (nginx's workers, the gateway's worker processes)."""
    pids, index = [pid], 0
    while index < len(pids):
        pids += children(pids[index])
        index += 1
    return pids


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the fields after the command name


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid`, its live descendants and its reaped children."""
    total = 0
    for member in tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after the name.
        total += sum(int(value) for value in fields[11:15])
    return total / TICK


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants (VmRSS)."""
    total = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` and its descendants onto `cpus`. (Whether there are cores enough to
    pin is the caller's question: this process's own affinity is no guide, as the harness pins
    itself to the load generator's core.)"""
    for member in tree(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except OSError:
                continue


class Processes:
    """The servers started for one run; `stop_all` ends them, last started first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> int:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the harness only, which stops them in order
        )
        log.close()
        self.started.append((name, process))
        return process.pid

    def alive(self, pid: int) -> bool:
        return any(p.pid == pid and p.poll() is None for _, p in self.started)

    def log_tail(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def __iter__(self) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
        return iter(self.started)

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in reversed(self.started):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # its own session: the whole group
                except OSError:
                    process.kill()
                process.wait()
        self.started.clear()
