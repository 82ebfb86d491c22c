"""Several worker processes on one machine: `gateway run --workers N`.

The supervisor starts N copies of `gateway run --worker`, each its own Python process with its
own event loop, all listening on the same address with SO_REUSEPORT so the kernel spreads new
connections across them. They share nothing in memory: sessions, codes, counters and the
enforcement ratchet live in the store, so a session made by one worker is honoured by all.

The supervisor forwards SIGTERM/SIGINT (stop) and SIGHUP (reload the policy) to every worker,
and starts again a worker that dies. A worker that keeps dying within seconds of its start
(a port taken, a store that refuses it) stops the whole gateway with its exit status, rather
than restarting forever.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger("gateway.workers")

QUICK_DEATH = 5.0  # a worker that exits sooner than this after its start counts as failing
MAX_QUICK_DEATHS = 5  # in a row, for one worker slot, before the gateway gives up
STOP_GRACE = 15.0  # seconds a worker has to finish after SIGTERM before it is killed
POLL = 0.2


class AddressInUse(OSError):
    """Something already listens on the address: another gateway, perhaps orphaned workers."""


def check_address_free(host: str, port: int) -> None:
    """Refuse to start N workers on an address something else already serves: workers share it
    with SO_REUSEPORT, which would otherwise quietly split the traffic with whatever is there
    (an older gateway with another configuration, say)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AddressInUse(
                f"{host}:{port} is already in use ({exc.strerror}); stop whatever listens there "
                "(an earlier gateway or its workers) first"
            ) from None


def become_worker() -> None:
    """In a worker: end with the supervisor. Linux sends SIGTERM when the parent dies, so a
    killed supervisor leaves no orphaned workers serving an old configuration."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the supervisor died before the line above took effect
        raise SystemExit("gateway worker: the supervisor is gone; not starting")


class Supervisor:
    def __init__(self, command: Sequence[str], workers: int) -> None:
        self.command = list(command)
        self.workers = workers
        self.slots: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.quick_deaths: dict[int, int] = {}
        self.stopping = False
        self.reload = False

    def _start(self, slot: int) -> None:
        process = subprocess.Popen(self.command)  # inherits stdout and stderr
        self.slots[slot] = process
        self.started[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, process.pid)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping %d workers", signal.Signals(signum).name, self.workers)
        self.stopping = True

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload = True

    def _signal_all(self, sig: signal.Signals) -> None:
        for process in self.slots.values():
            if process.poll() is None:
                process.send_signal(sig)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        for slot in range(self.workers):
            self._start(slot)
        status = 0
        while not self.stopping:
            time.sleep(POLL)
            if self.reload:
                self.reload = False
                log.info("SIGHUP received: asking every worker to reload the policy files")
                self._signal_all(signal.SIGHUP)
            for slot, process in list(self.slots.items()):
                code = process.poll()
                if code is None or self.stopping:
                    continue
                lived = time.monotonic() - self.started[slot]
                quick = self.quick_deaths.get(slot, 0) + 1 if lived < QUICK_DEATH else 0
                self.quick_deaths[slot] = quick
                if quick >= MAX_QUICK_DEATHS:
                    log.error(
                        "worker %d exited with status %d %d times in a row within %.0f s of "
                        "starting: stopping the gateway",
                        slot,
                        code,
                        quick,
                        QUICK_DEATH,
                    )
                    status = code or 1
                    self.stopping = True
                    break
                log.warning(
                    "worker %d (pid %d) exited with status %d: starting it again",
                    slot,
                    process.pid,
                    code,
                )
                time.sleep(min(quick, 3) * 0.5)  # a little patience with a failing start
                self._start(slot)
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in self.slots.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time: killing it", process.pid)
                process.kill()
                process.wait()
        log.info("all workers stopped")
        return status


def worker_command(config: Path, log_level: str | None) -> list[str]:
    """How the supervisor starts one worker: this Python, this package, the same settings."""
    command = [sys.executable, "-m", "gateway"]
    if log_level is not None:
        command += ["--log-level", log_level]
    return [*command, "run", "--config", str(config), "--worker"]
