"""gateway.beside: the work done beside requests (policy reloads, the watcher's look) runs in
one thread scheduled SCHED_IDLE, so the event loop gets the core whenever it needs it."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import pytest

from gateway import beside as beside_module
from gateway.beside import NICE, beside
from gateway.policy import PolicyHolder, load_policy_dir
from gateway.policy import reload as reload_module
from gateway.policy.reload import PolicyReloader

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")


def _idle_allowed() -> bool:
    """Whether this system lets a thread schedule itself SCHED_IDLE (some seccomp setups do
    not: gateway.beside then falls back to nice 19, tested below)."""
    allowed: list[bool] = []

    def attempt() -> None:
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
            allowed.append(True)
        except OSError:
            allowed.append(False)

    probe = threading.Thread(target=attempt)
    probe.start()
    probe.join()
    return allowed == [True]


IDLE = pytest.mark.skipif(not _idle_allowed(), reason="SCHED_IDLE is refused here")


def whoami() -> tuple[int, int]:
    """This thread's id and scheduling policy."""
    me = threading.get_native_id()
    return me, os.sched_getscheduler(me)


@IDLE
async def test_work_runs_in_one_thread_of_the_lowest_priority() -> None:
    loop_thread, loop_policy = whoami()
    first, second = await beside(whoami), await beside(whoami)
    assert first == second  # one thread, for all of it
    thread, policy = first
    assert thread != loop_thread
    assert policy == os.SCHED_IDLE
    assert whoami() == (loop_thread, loop_policy)  # the loop's own scheduling is untouched


async def test_the_work_gets_its_arguments_and_its_errors_come_back() -> None:
    assert await beside(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        await beside(divmod, 1, 0)


async def test_where_idle_scheduling_is_refused_the_thread_takes_nice_19(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    caplog.set_level(logging.INFO, logger="gateway")
    monkeypatch.setattr(beside_module, "_executor", None)  # a new thread, started refused
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    try:
        me = await beside(threading.get_native_id)
        assert await beside(os.getpriority, os.PRIO_PROCESS, me) == NICE
        assert "runs at nice 19" in caplog.text
    finally:
        refused = beside_module._executor
        assert refused is not None
        refused.shutdown()


async def test_with_no_lower_priority_at_all_the_work_still_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(beside_module, "_executor", None)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(os, "setpriority", refuse)
    try:
        assert await beside(divmod, 9, 4) == (2, 1)
        assert "keeps its normal priority" in caplog.text
    finally:
        refused = beside_module._executor
        assert refused is not None
        refused.shutdown()


@IDLE
async def test_a_policy_reload_reads_the_files_in_that_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "acme.yaml").write_text("company: Acme\nmembers:\n  domains: [acme.example]\n")
    holder = PolicyHolder()
    holder.replace(load_policy_dir(directory))
    readers: list[tuple[int, int]] = []
    real = reload_module.load_policy_dir

    def recording(*args: object, **kwargs: object) -> object:
        readers.append(whoami())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reload_module, "load_policy_dir", recording)
    assert await PolicyReloader(holder, directory).reload_now("test")
    [(thread, policy)] = readers
    assert (thread, policy) == await beside(whoami)
    assert policy == os.SCHED_IDLE
