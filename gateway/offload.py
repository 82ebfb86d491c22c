"""CPU-heavy steps (argon2 verification, recovery-code hashing) run off the event loop, a few at
a time: a spray of wrong passwords queues here instead of holding up every other request of
the worker (issue 15: 20 concurrent sign-ins put healthz at 2.3 s)."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# At most this many run at once per event loop: as many as there are cores (each argon2
# verification uses one), so queued ones wait without taking the loop's time.
CONCURRENCY = max(1, min(4, os.cpu_count() or 1))
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def off_loop(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a worker thread, at most CONCURRENCY at a time."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(CONCURRENCY)
    async with gate:
        return await asyncio.to_thread(function, *args)
