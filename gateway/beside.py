"""One thread for the work the gateway does beside its requests: policy reloads and the policy
watcher's look at its directory.

Such work runs for tenths of a second of CPU (a thousand policy files). On a machine whose
cores are all busy, or a gateway held to one core, a thread of normal priority shares the CPU
with the event loop: each time the loop waited for the network, the operating system could
give the core to the reload, and the loop waited for a time slice, then for the interpreter
lock, so a request that takes 0.3 ms took 3 to 5. So the thread runs under Linux's SCHED_IDLE
policy (nice 19 where that is refused), which any process may set for its own threads and
never undoes, and while it works the loop asks for the interpreter lock back after 20
microseconds (gateway.heap.beside_requests; the kernel's timer slack may add some 50).

Measured with the benchmark's 1,000 company files and 10,000 rules, the gateway held to one
core: reloading back to back added 3.8 ms to the p99 of one connection before, 0.45 ms after.
The reload takes what the loop leaves: with two spinning processes and a load of 16 connections
on both cores, SIGHUP to in force took 1.8 s instead of 0.3 s. The thread is no guarantee
against other processes: on saturated cores the loop can still wait for the lock while the
thread waits for the CPU.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger("gateway")

T = TypeVar("T")

NICE = 19  # the largest nice value, where SCHED_IDLE is refused

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    """Run in the thread itself, once: only this thread's scheduling changes."""
    me = threading.get_native_id()
    try:
        os.sched_setscheduler(me, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError) as exc:  # not Linux, or refused: the next best
        idle_refused = exc
    try:
        os.setpriority(os.PRIO_PROCESS, me, NICE)
        log.info("the policy reload thread runs at nice %d (SCHED_IDLE: %s)", NICE, idle_refused)
    except (AttributeError, OSError) as exc:
        log.warning("the policy reload thread keeps its normal priority: %s", exc)


def _the_thread() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="gateway-beside", initializer=_lower_priority
            )
        return _executor


async def beside(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in the low-priority thread; work given to it runs one at a time."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_the_thread(), functools.partial(function, *args))
