"""gateway.heap.beside_requests: work in a thread beside the event loop (a policy reload)."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator

import pytest

from gateway import heap


@pytest.fixture(autouse=True)
def _nothing_left_frozen() -> Iterator[None]:
    """What these tests freeze goes back to the collector: other tests in this process see
    the generations as they were."""
    yield
    gc.unfreeze()


def test_the_loop_gets_the_lock_back_sooner_and_everything_is_put_back() -> None:
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    with heap.beside_requests():
        assert sys.getswitchinterval() == pytest.approx(min(interval, heap.BESIDE_REQUESTS_SWITCH))
        assert gc.isenabled() == enabled  # only work that builds pauses the collector
    assert (sys.getswitchinterval(), gc.isenabled()) == (interval, enabled)


def test_what_a_build_leaves_is_frozen_and_no_collection_runs_meanwhile() -> None:
    gc.enable()
    frozen = gc.get_freeze_count()
    with heap.beside_requests(builds=True):
        assert not gc.isenabled()
        kept = [{"rule": number} for number in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_overlapping_threads_put_the_settings_back_once_the_last_is_done() -> None:
    """A look at the directory and a reload may overlap: the first in must not restore the
    lowered interval it found when the second changed it (left lowered for good)."""
    interval = sys.getswitchinterval()
    inside, release = threading.Event(), threading.Event()

    def second() -> None:
        with heap.beside_requests(builds=True):
            inside.set()
            release.wait(5)

    with heap.beside_requests():
        worker = threading.Thread(target=second)
        worker.start()
        assert inside.wait(5)
    assert sys.getswitchinterval() == pytest.approx(heap.BESIDE_REQUESTS_SWITCH)  # the second is in
    release.set()
    worker.join(5)
    assert sys.getswitchinterval() == interval and gc.isenabled()


def test_garbage_cycles_made_before_a_build_are_not_frozen_with_it() -> None:
    """Review finding: freezing without collecting kept every dead reference cycle pending in
    the young generation for good, more with each reload."""
    import weakref

    class Node:
        other: Node

    gc.enable()
    gc.collect()
    first, second = Node(), Node()
    first.other, second.other = second, first
    alive = weakref.ref(first)
    del first, second  # a cycle: only a collection frees it
    with heap.beside_requests(builds=True):
        pass
    gc.collect()
    assert alive() is None
