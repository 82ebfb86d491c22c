"""The garbage collector, tuned once the gateway has started.

Everything made at start-up (modules, settings, the policy, templates, the store and HTTP
clients) lives as long as the process. Left in the collector's generations, each full collection
walks all of it again, which costs every request a little and some requests milliseconds.
`settle()` moves it out of the collector's sight (gc.freeze) and collects the short-lived
objects of requests less often. Reference counting still frees almost everything at once; only
reference cycles wait for a collection.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator

# Allocations (minus frees) between young-generation collections; CPython's default is 700,
# which a proxied request's few hundred objects reach every other request.
YOUNG_THRESHOLD = 20_000
OLDER_THRESHOLDS = (20, 20)  # young collections per middle one, middle per full one


def settle() -> None:
    """Call once, after start-up and before serving: collect, freeze what is left, and space
    the collections out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


# While a thread works beside the event loop (a policy reload, a look at the policy directory),
# the loop waits for the interpreter lock at most this long (CPython's default is 5 ms). Each
# request takes the lock back after every network wait, several times; at 0.5 ms that was up to
# 3 ms a request while a reload ran on the same core (with gateway.beside's low priority).
BESIDE_REQUESTS_SWITCH = 0.00002

_beside = threading.Lock()
_working = 0  # threads inside beside_requests()
_restore: tuple[float, bool] = (0.005, True)  # the switch interval and collector state before


@contextlib.contextmanager
def beside_requests(builds: bool = False) -> Iterator[None]:
    """For work a thread does while the event loop serves requests: the loop gets the
    interpreter lock back within 20 microseconds instead of five milliseconds.

    `builds`: the work makes tens of thousands of objects that live on (a policy reload): the
    young generation is collected first (what requests left so far), no collection runs
    meanwhile (one walking the new objects held every request up for tens of milliseconds),
    and what is left when it ends is frozen, like start-up's (settle). Frozen objects are still
    freed once nothing refers to them (a replaced policy), but a reference cycle that became
    garbage while the work ran (requests make next to none) is kept for good. The work must
    end: a thread stuck on a hung file system would leave the collector paused (policy files
    are opened without blocking, so a FIFO in a file's place cannot do it). Threads may
    overlap: the first in changes the settings, the last out puts them back."""
    global _working, _restore
    with _beside:
        if _working == 0:
            _restore = (sys.getswitchinterval(), gc.isenabled())
            sys.setswitchinterval(min(_restore[0], BESIDE_REQUESTS_SWITCH))
        _working += 1
        if builds:
            gc.collect(0)
            gc.disable()
    try:
        yield
    finally:
        with _beside:
            if builds:
                gc.freeze()
            _working -= 1
            if _working == 0:
                sys.setswitchinterval(_restore[0])
                if _restore[1]:
                    gc.enable()
