"""Policy hot reload: the policy directory is watched (and SIGHUP asks for a reload); a valid new
policy replaces the one in force in one step, an invalid one is refused and the old one stays.

Watching is polling: every `interval` seconds a cheap signature of the directory (name, mtime,
size and inode of each policy file) is compared with the one last loaded. A change is loaded only
once the signature has stayed the same for `settle` seconds, so an editor's burst of writes is
read once; a half-written file that is read anyway is just an invalid policy, refused like any
other. Files are read in a worker thread so that requests keep flowing while YAML is parsed.

Timestamps can be coarser than writes are quick: two writes in one clock tick, of the same size,
look alike. So a load whose files were modified shortly before it started is "racy" and the files
are read once more at the next poll; an identical policy is then not swapped in again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import NamedTuple

from gateway import heap
from gateway.audit import audit
from gateway.beside import beside
from gateway.config_errors import ConfigError, ConfigInvalid
from gateway.policy.entries import policy_entries
from gateway.policy.holder import PolicyHolder
from gateway.policy.loader import load_policy_dir
from gateway.policy.model import Policy

log = logging.getLogger("gateway.policy")

POLL_INTERVAL = 1.0  # seconds between two looks at the policy directory
SETTLE = 0.2  # a changed directory must look the same this long before it is read
MAX_SETTLE = 5.0  # a directory that never stops changing is read after this long anyway
RACY_WINDOW_NS = 1_000_000_000  # files modified this close to a load are read again


def _racy(signature: Signature, started: int) -> bool:
    """Whether a file changed so close to a load begun at `started` (ns) that it may have
    changed again within its timestamp's resolution: it is read once more at the next poll."""
    return isinstance(signature, tuple) and any(
        mtime_ns >= started - RACY_WINDOW_NS for _, mtime_ns, _, _ in signature
    )


class _Read(NamedTuple):
    policy: Policy
    same: bool  # says what the policy in force when the load began says
    racy: bool  # a file changed so close to the load that it is read again at the next poll
    errors: list[ConfigError]  # the load is refused if any


AfterLoad = Callable[[Policy], Awaitable[object]]
OnResult = Callable[[str], object]  # "accepted" or "refused", after each counted reload
# (name, mtime_ns, size, inode) per policy file, or why the directory could not be listed
Signature = tuple[tuple[str, int, int, int], ...] | str


class PolicyReloader:
    """Owns the reloading of `holder` from `directory`; `start()` watches, `stop()` ends it.

    `after_load` runs after every policy swapped in (the gateway records the enforcement ratchet
    with it); if it fails it is retried at the next poll. `reloads_accepted` and
    `reloads_refused` count reloads that changed the policy or were refused (`on_result` hears
    of each); `last_error` says why the files on disk are not in force, None when they are.
    """

    def __init__(
        self,
        holder: PolicyHolder,
        directory: Path,
        known_apps: Collection[str] | None = None,
        after_load: AfterLoad | None = None,
        *,
        on_result: OnResult | None = None,
        interval: float | None = None,
        settle: float | None = None,
        max_settle: float | None = None,
    ) -> None:
        self.holder = holder
        self.directory = directory
        self.known_apps = tuple(known_apps) if known_apps is not None else None
        self.after_load = after_load
        self.on_result = on_result
        self.interval = POLL_INTERVAL if interval is None else interval
        self.settle = SETTLE if settle is None else settle
        self.max_settle = MAX_SETTLE if max_settle is None else max_settle
        self.reloads_accepted = 0
        self.reloads_refused = 0
        self.last_error: str | None = None
        self._signature: Signature | None = None
        self._racy = True  # what is in force was read at an unknown time: compare it once
        self._last_errors: list[ConfigError] | None = None
        self._hook_pending: Policy | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._requested: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start watching; the files are compared with the policy in force at the first poll."""
        if self.running:
            return
        self._signature = self._signature_now()
        self._racy = True
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="policy-reloader")
        log.info("watching the policy directory %s every %gs", self.directory, self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    def request_reload(self, trigger: str) -> None:
        """Ask the watcher to reload now (from a signal handler: this does not block)."""
        if not self.running:
            log.warning("policy reload (%s) not done: the policy watcher is not running", trigger)
            return
        self._requested = trigger
        self._wake.set()

    async def reload_now(self, trigger: str = "reload request") -> bool:
        """Read the policy files now, without waiting for them to settle; True if they are in
        force afterwards (swapped in, or the same as the policy in force)."""
        async with self._lock:
            return await self._reload(await self._look(), trigger, quiet=False)

    async def _watch(self) -> None:
        while True:
            trigger = await self._next_wake()
            try:
                if trigger is not None:
                    await self.reload_now(trigger)
                else:
                    await self._poll()
            except Exception:  # the watcher must outlive any surprise; the old policy stays
                log.exception("policy watcher: unexpected error; watching goes on")

    async def _next_wake(self) -> str | None:
        try:
            async with asyncio.timeout(self.interval):
                await self._wake.wait()
        except TimeoutError:
            return None
        self._wake.clear()
        trigger, self._requested = self._requested, None
        return trigger

    async def _poll(self) -> None:
        if self._hook_pending is not None:
            async with self._lock:
                await self._run_after_load()
        signature = await self._look()
        changed = signature != self._signature
        if not changed and not self._racy:
            return
        if changed:
            signature = await self._settled(signature)
        async with self._lock:
            await self._reload(signature, "file change", quiet=not changed)

    async def _settled(self, signature: Signature) -> Signature:
        """The signature once it has stopped changing for `settle` seconds (or `max_settle`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_settle
        while loop.time() < deadline:
            await asyncio.sleep(self.settle)
            again = await self._look()
            if again == signature:
                break
            signature = again
        return signature

    async def _look(self) -> Signature:
        """The directory's signature, taken in a worker thread: listing and statting a thousand
        files takes milliseconds, which requests on the loop would wait through every poll."""
        return await beside(self._signature_now)

    def _signature_now(self) -> Signature:
        with heap.beside_requests():  # a thousand files: milliseconds of Python
            return self._signature_of_files()

    def _signature_of_files(self) -> Signature:
        try:
            files, problems = policy_entries(self.directory)
        except OSError as exc:
            return f"cannot list {self.directory}: {exc.strerror or exc}"
        # an entry that is no policy file (a FIFO, a link out) changes the signature too
        entries: list[tuple[str, int, int, int]] = [(str(p), 0, 0, 0) for p in problems]
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue  # gone since it was listed; the next poll sees the directory as it is
            entries.append((path.name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        return tuple(entries)

    async def _reload(self, signature: Signature, trigger: str, quiet: bool) -> bool:
        """Load the files `signature` describes; `quiet` for a re-read of unchanged files, where
        only a difference from the last outcome is worth a log line."""
        started = time.time_ns()
        errors: list[ConfigError] = []
        policy, same, current = Policy.EMPTY, False, self.holder.current
        try:
            policy, same, racy, errors = await beside(self._load, current, signature)
        except Exception as exc:  # a loader bug is a refused reload, never a dead watcher
            log.exception("policy reload (%s): the loader failed", trigger)
            errors = [ConfigError(str(self.directory), 0, f"the policy could not be loaded: {exc}")]
            racy = _racy(signature, started)  # read again only if the files may have changed
        self._signature = signature
        self._racy = racy
        if errors:
            if quiet and errors == self._last_errors:
                return False
            self._refuse(errors, trigger)
            return False
        await self._accept(policy, trigger, quiet, same and current is self.holder.current)
        return True

    def _load(self, current: Policy, signature: Signature) -> _Read:
        """The policy files read (in the thread beside requests, gateway.beside): the policy,
        whether it says what `current` says, whether a file of `signature` changed so close to
        this load that it must be read again (racy), and the errors that refuse it. Each takes
        milliseconds with a thousand files, which requests must not wait for."""
        racy = _racy(signature, time.time_ns())
        try:
            with heap.beside_requests(builds=True):
                policy = load_policy_dir(self.directory, self.known_apps)
                return _Read(policy, policy == current, racy, [])
        except ConfigInvalid as exc:
            return _Read(Policy.EMPTY, False, racy, exc.errors)

    def _refuse(self, errors: list[ConfigError], trigger: str) -> None:
        self.reloads_refused += 1
        self._last_errors = errors
        self.last_error = "\n".join(str(error) for error in errors)
        for error in errors:
            log.error("policy reload refused: %s", error)
        generation = self.holder.generation
        log.error(
            "policy reload (%s) refused: %d error%s; the policy in force (generation %d) stays",
            trigger,
            len(errors),
            "" if len(errors) == 1 else "s",
            generation,
        )
        audit(
            "policy_reload",
            outcome="refused",
            errors=len(errors),
            generation=generation,
            trigger=trigger,
        )
        if self.on_result is not None:
            self.on_result("refused")

    async def _accept(self, policy: Policy, trigger: str, quiet: bool, same: bool) -> None:
        """`same`: the policy says what the one in force says (compared off the event loop)."""
        was_refused = self._last_errors is not None
        self._last_errors = None
        self.last_error = None
        if same:
            level = logging.DEBUG if quiet and not was_refused else logging.INFO
            log.log(
                level,
                "policy files read (%s): no change, generation %d stays",
                trigger,
                self.holder.generation,
            )
            await self._run_after_load()  # only if an earlier run failed
            return
        self.holder.replace(policy)  # one reference swap: requests keep the policy they took
        self.reloads_accepted += 1
        generation = self.holder.generation
        log.info(
            "policy reloaded (%s): generation %d, %d companies, access rules for %s",
            trigger,
            generation,
            len(policy.companies),
            ", ".join(sorted(policy.access_rules)) or "no application",
        )
        audit("policy_reload", outcome="accepted", generation=generation, trigger=trigger)
        if self.on_result is not None:
            self.on_result("accepted")
        self._hook_pending = policy
        await self._run_after_load()

    async def _run_after_load(self) -> None:
        policy = self._hook_pending
        if policy is None or self.after_load is None:
            self._hook_pending = None
            return
        if policy is not self.holder.current:  # a newer policy has its own run
            self._hook_pending = None
            return
        try:
            await self.after_load(policy)
        except Exception:
            log.exception(
                "after loading policy generation %d: the follow-up failed; retried at the "
                "next poll",
                self.holder.generation,
            )
            return
        self._hook_pending = None
