"""One thread for the work the gateway does beside its requests: policy reloads and the policy
watcher's look at its directory.

Such work runs for tenths of a second of CPU (a thousand policy files). On a machine whose
cores are all busy, or a gateway held to one core, a thread of normal priority shares the CPU
with the event loop: each time the loop waited for the network, the operating system could
give the core to the reload and the loop waited for a time slice, then for the interpreter
lock, and a request that should take 0.3 ms took 3 to 5. So the thread runs at the lowest
priority the system has for ordinary threads (nice 19, which any process may set for its own
threads, never undone), and while it works the loop gets the interpreter lock back within
20 microseconds (gateway.heap.beside_requests): the loop runs whenever it has something to do,
and the reload takes the rest. When the loop has nothing to spare for minutes on end, a
reload waits; requests do not.
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

NICE = 19  # the lowest priority (the largest nice value) Linux gives an ordinary thread

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    """Run in the thread itself, once: only this thread's priority changes."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None:  # not on this system: the work still runs, at normal priority
        return
    try:
        setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except OSError as exc:
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
