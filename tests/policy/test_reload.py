"""Policy hot reload: the watcher swaps in valid policy files, refuses invalid ones and keeps the
old policy, survives its directory vanishing, and a reload storm loses no request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.policy import Policy, PolicyHolder, load_policy_dir
from gateway.policy import reload as reload_module
from gateway.policy.reload import PolicyReloader
from tests.support import GatewayProcess, intercept_app, portal_app, settings_dict

INTERVAL = 0.02
FAST: dict[str, Any] = {"interval": INTERVAL, "settle": INTERVAL}


def company(name: str, domain: str, extra: str = "") -> str:
    return f"company: {name}\nmembers:\n  domains: [{domain}]\nenforce_2fa: true\n{extra}"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true in time")
        await asyncio.sleep(0.01)


def write(path: Path, text: str) -> None:
    """Write atomically, as docs/operations.md asks of policy files (elsewhere, then renamed): written in
    place, a watcher on a loaded machine could read the file truncated and refuse it (seen in
    CI). The rename gives a new inode, so the signature moves even with coarse timestamps."""
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text)
    os.replace(staged, path)


def name_of(policy: Policy, company_id: str = "acme") -> str:
    company = policy.company_by_id(company_id)
    assert company is not None, f"no company {company_id}"
    return company.name


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "acme.yaml").write_text(company("Acme", "acme.example"))
    return directory


@asynccontextmanager
async def watching(directory: Path, **options: Any) -> AsyncIterator[PolicyReloader]:
    holder = PolicyHolder()
    holder.replace(load_policy_dir(directory))
    reloader = PolicyReloader(holder, directory, **{**FAST, **options})
    reloader.start()
    try:
        yield reloader
    finally:
        await reloader.stop()
        assert not reloader.running


def audit_events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    records = [r for r in caplog.records if r.name == "gateway.audit"]
    return [e for e in (json.loads(r.getMessage()) for r in records) if e["event"] == event]


async def test_valid_change_applies(policy_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A new company file is seen by the watcher: generation 2, the company visible, audited."""
    caplog.set_level(logging.INFO)
    async with watching(policy_dir) as reloader:
        holder = reloader.holder
        old = holder.current
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        await wait_until(lambda: holder.generation == 2)
        assert holder.current.company_for("x@globex.example") is not None
        assert old.company_for("x@globex.example") is None  # a reader's object never changes
        assert (reloader.reloads_accepted, reloader.reloads_refused) == (1, 0)
        assert reloader.last_error is None
    [event] = audit_events(caplog, "policy_reload")
    assert event["outcome"] == "accepted" and event["generation"] == 2


async def test_invalid_change_is_refused_and_the_old_policy_stays(
    policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An error in a file: counted, every error logged as file:line, the old policy in force;
    fixing the file applies it and clears last_error."""
    caplog.set_level(logging.INFO)
    path = policy_dir / "acme.yaml"
    async with watching(policy_dir) as reloader:
        holder = reloader.holder
        before = holder.current
        extra = "enforce_2fa_typo: 1\nmethods: {allowed: [sms], default: x}\n"
        write(path, company("Acme", "acme.example", extra))
        await wait_until(lambda: reloader.reloads_refused == 1)
        assert holder.current is before and holder.generation == 1
        errors = [
            r.getMessage()
            for r in caplog.records
            if r.name == "gateway.policy" and r.levelno == logging.ERROR
        ]
        assert any(f"{path}:5: " in message for message in errors), errors
        assert any(f"{path}:6: " in message for message in errors), errors
        assert reloader.last_error is not None and f"{path}:5: " in reloader.last_error
        [event] = audit_events(caplog, "policy_reload")
        assert event["outcome"] == "refused" and event["errors"] == 2
        assert len(errors) == 3  # each error, then the summary

        await asyncio.sleep(5 * INTERVAL)  # unchanged bad files are not refused again
        assert reloader.reloads_refused == 1

        write(path, company("Acme Corp", "acme.example"))
        await wait_until(lambda: holder.generation == 2)
        assert name_of(holder.current) == "Acme Corp"
        assert reloader.last_error is None
        assert (reloader.reloads_accepted, reloader.reloads_refused) == (1, 1)


async def test_a_half_written_file_is_refused_not_a_crash(policy_dir: Path) -> None:
    """A file cut in the middle of a line is a YAML error like any other; watching goes on."""
    async with watching(policy_dir, interval=60) as reloader:
        text = company("Globex", "globex.example")
        write(policy_dir / "globex.yaml", text[: text.index("globex.example") + 4])
        assert await reloader.reload_now() is False
        assert reloader.running and reloader.holder.generation == 1
        assert reloader.last_error is not None and "globex.yaml:" in reloader.last_error
        (policy_dir / "globex.yaml").write_bytes(b"company: \xff\xfe\n")
        assert await reloader.reload_now() is False
        assert "not UTF-8" in (reloader.last_error or "")
        assert reloader.reloads_refused == 2 and reloader.running


async def test_files_deleted_and_added(policy_dir: Path) -> None:
    """Removing a company file removes the company; adding it back brings it back."""
    write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
    async with watching(policy_dir) as reloader:
        holder = reloader.holder
        assert holder.current.company_by_id("globex") is not None
        (policy_dir / "globex.yaml").unlink()
        await wait_until(lambda: holder.current.company_by_id("globex") is None)
        assert holder.current.company_by_id("acme") is not None
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        await wait_until(lambda: holder.current.company_by_id("globex") is not None)
        assert holder.generation == 3 and reloader.reloads_accepted == 2


async def test_hidden_and_other_files_are_not_watched(policy_dir: Path) -> None:
    """Editor backups and dot files are not policy files: writing them reloads nothing."""
    async with watching(policy_dir) as reloader:
        write(policy_dir / ".acme.yaml.swp", "garbage: [")
        write(policy_dir / "acme.yaml~", "garbage: [")
        write(policy_dir / "_draft.yaml", "garbage: [")
        await asyncio.sleep(5 * INTERVAL)
        assert (reloader.reloads_accepted, reloader.reloads_refused) == (0, 0)


async def test_sighup_path_reloads_at_once(policy_dir: Path) -> None:
    """reload_now() (what SIGHUP runs) reads the files without waiting for a poll, and
    request_reload() (the signal handler's call) wakes the watcher to do it."""
    async with watching(policy_dir, interval=60) as reloader:
        holder = reloader.holder
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        assert await reloader.reload_now("SIGHUP") is True
        assert holder.generation == 2 and holder.current.company_by_id("globex") is not None
        assert await reloader.reload_now("SIGHUP") is True  # nothing changed: nothing swapped
        assert holder.generation == 2 and reloader.reloads_accepted == 1

        write(policy_dir / "initech.yaml", company("Initech", "initech.example"))
        reloader.request_reload("SIGHUP")
        await wait_until(lambda: holder.generation == 3)

        write(policy_dir / "initech.yaml", "company: Initech\n")
        assert await reloader.reload_now("SIGHUP") is False
        assert holder.generation == 3 and reloader.reloads_refused == 1


async def test_request_reload_without_a_watcher_is_a_warning(
    policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A signal before start or after stop does nothing but say so."""
    reloader = PolicyReloader(PolicyHolder(), policy_dir)
    reloader.request_reload("SIGHUP")
    assert "not running" in caplog.text
    assert reloader.holder.generation == 0


async def test_unchanged_content_is_not_swapped(policy_dir: Path) -> None:
    """Touching a file re-reads it; the same policy is not swapped in again."""
    async with watching(policy_dir) as reloader:
        path = policy_dir / "acme.yaml"
        write(path, path.read_text())
        await asyncio.sleep(10 * INTERVAL)
        assert reloader.holder.generation == 1 and reloader.reloads_accepted == 0


async def test_a_change_before_start_is_applied_at_the_first_poll(policy_dir: Path) -> None:
    """Files changed between the startup load and the watcher's start are not missed."""
    holder = PolicyHolder()
    holder.replace(load_policy_dir(policy_dir))
    write(policy_dir / "acme.yaml", company("Acme Corp", "acme.example"))
    reloader = PolicyReloader(holder, policy_dir, interval=INTERVAL, settle=INTERVAL)
    reloader.start()
    try:
        await wait_until(lambda: holder.generation == 2)
        assert name_of(holder.current) == "Acme Corp"
    finally:
        await reloader.stop()


async def test_the_directory_disappears_and_comes_back(policy_dir: Path) -> None:
    """A vanished directory is a refused reload (the policy stays); when it is back, watching
    goes on and a later change applies."""
    async with watching(policy_dir) as reloader:
        holder = reloader.holder
        away = policy_dir.with_name("away")
        policy_dir.rename(away)
        await wait_until(lambda: reloader.reloads_refused == 1)
        assert "does not exist" in (reloader.last_error or "")
        assert holder.generation == 1 and holder.current.company_by_id("acme") is not None
        await asyncio.sleep(5 * INTERVAL)
        assert reloader.reloads_refused == 1  # refused once, not at every poll
        away.rename(policy_dir)
        await wait_until(lambda: reloader.last_error is None)
        assert holder.generation == 1  # the same files: the same policy
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        await wait_until(lambda: holder.generation == 2)
        assert reloader.running


async def test_a_burst_of_writes_is_read_once_it_settles(policy_dir: Path) -> None:
    """Twenty quick writes, closer together than `settle`: one reload, of the last content."""
    async with watching(policy_dir, interval=0.01, settle=0.1) as reloader:
        for index in range(20):
            write(policy_dir / "acme.yaml", company(f"Acme {index}", "acme.example"))
            await asyncio.sleep(0.01)
        await wait_until(lambda: reloader.holder.generation >= 2)
        await asyncio.sleep(0.3)
        assert name_of(reloader.holder.current) == "Acme 19"
        assert reloader.reloads_accepted <= 2


async def test_after_load_runs_for_each_new_policy_and_is_retried(policy_dir: Path) -> None:
    """The hook sees every policy swapped in; when it fails it runs again at the next poll."""
    seen: list[Policy] = []
    failures = [RuntimeError("store down")]

    async def after_load(policy: Policy) -> None:
        if failures:
            raise failures.pop()
        seen.append(policy)

    async with watching(policy_dir, after_load=after_load) as reloader:
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        await wait_until(lambda: len(seen) == 1)
        assert seen[0] is reloader.holder.current and reloader.reloads_accepted == 1
        write(policy_dir / "initech.yaml", company("Initech", "initech.example"))
        await wait_until(lambda: len(seen) == 2)
        assert seen[1] is reloader.holder.current


# The reload storm: an in-process gateway, an upstream that answers, and the policy files
# rewritten a hundred times while hundreds of requests go through.

ACCESS = """applications:
  app:
    - paths: ["/open/**"]
      access: bypass
    - paths: ["/flip/**"]
      access: {flip}
"""
STORM_INVALID = (
    ("applications.yaml", ACCESS.format(flip="sometimes")),  # not an access level
    ("acme.yaml", "company: Acme\nmembers: {domains: [acme.example]}\nenforce_2fa: maybe\n"),
    ("applications.yaml", 'applications:\n  app:\n    - paths: ["/open/**"\n'),  # YAML error
    ("acme.yaml", ""),  # truncated to nothing
)


def storm_variant(index: int) -> dict[str, str]:
    return {
        "applications.yaml": ACCESS.format(flip="bypass" if index % 2 else "deny"),
        "acme.yaml": company(f"Acme {index}", "acme.example"),
    }


@pytest.fixture
async def answering_upstream() -> AsyncIterator[TestServer]:
    async def answer(request: web.Request) -> web.Response:
        if request.path.endswith("/slow"):
            await asyncio.sleep(0.2)
        return web.Response(text=f"upstream {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def write_in_two_halves(path: Path, text: str) -> None:
    """What an editor writing in place looks like to a watcher: a short file, then the rest."""
    with path.open("w") as file:
        file.write(text[: len(text) // 2])
        file.flush()
        await asyncio.sleep(0)
        file.write(text[len(text) // 2 :])


async def test_reload_storm_loses_no_request(
    make_gateway: Any,
    answering_upstream: TestServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hundred rewrites (valid variants, invalid files, half-written files) while 300 requests
    flow: every request is answered by one policy or the other, never with an error, and the
    last valid policy is the one in force at the end."""
    monkeypatch.setattr(reload_module, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(reload_module, "SETTLE", 0.005)
    client = await make_gateway(
        {"app": intercept_app(str(answering_upstream.make_url("")))}, policies=storm_variant(0)
    )
    runtime = client.app[RUNTIME]
    reloader = runtime.reloader
    assert reloader is not None and reloader.interval == 0.01
    policy_dir = runtime.settings.policy_dir
    last = 99

    async def storm() -> None:
        for index in range(1, last + 1):
            if index % 9 == 0:
                name, text = STORM_INVALID[(index // 9) % len(STORM_INVALID)]
                write(policy_dir / name, text)
                await asyncio.sleep(0.04)  # long enough to be read, and refused
            for name, text in storm_variant(index).items():
                if index % 5 == 0:
                    await write_in_two_halves(policy_dir / name, text)
                else:
                    write(policy_dir / name, text)
            await asyncio.sleep(0.012)

    async def request(index: int) -> tuple[str, int, str]:
        await asyncio.sleep(index * 0.005)
        path = ("/open/a", "/flip/b", "/open/slow")[index % 3]
        response = await client.get(path, allow_redirects=False)
        return path, response.status, await response.text()

    caplog.set_level(logging.INFO)
    results, _ = await asyncio.gather(
        asyncio.gather(*(request(index) for index in range(300))), storm()
    )

    assert len(results) == 300
    for path, status, body in results:
        if path.startswith("/open/"):
            assert (status, body) == (200, f"upstream {path}")
        else:
            assert (status, body) == (200, f"upstream {path}") or status == 403, (status, body)
    flips = {status for path, status, _ in results if path == "/flip/b"}
    assert flips == {200, 403}, "requests saw more than one policy"

    final = load_policy_dir(policy_dir, known_apps=["app"])
    await wait_until(lambda: runtime.policy.current == final)
    current = runtime.policy.current
    assert name_of(current) == f"Acme {last}"
    assert (await client.get("/flip/b")).status == (200 if last % 2 else 403)
    assert reloader.reloads_accepted >= 10
    assert reloader.reloads_refused >= 1
    unexpected = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "gateway.policy"
    ]
    assert not unexpected, [r.getMessage() for r in unexpected]


# SIGHUP to a real `gateway run` process: the signal handler in server.py.


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[tuple[GatewayProcess, Path]]:
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  carol@acme.example:\n    password: '{hash_password('pw')}'\n")
    policies = {
        "acme.yaml": company("Acme", "acme.example"),
        "applications.yaml": ACCESS.format(flip="deny"),
    }
    # The upstream is never contacted: portal mode answers anonymous requests itself.
    data = settings_dict(
        tmp_path, {"app": portal_app("http://127.0.0.1:9", users)}, policies=policies
    )
    process = GatewayProcess.run(tmp_path, data)
    yield process, Path(data["policy_dir"])
    process.stop()


async def test_sighup_reloads_a_running_gateway(
    gateway_process: tuple[GatewayProcess, Path],
) -> None:
    """`kill -HUP` makes `gateway run` read its policy files now; the log names the signal."""
    process, policy_dir = gateway_process

    async def flip_status(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{process.url}/flip/x", allow_redirects=False) as response:
            return response.status

    async with aiohttp.ClientSession() as session:
        assert await flip_status(session) == 403
        write(policy_dir / "applications.yaml", ACCESS.format(flip="two_factor"))
        os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while await flip_status(session) == 403:
            assert time.monotonic() < deadline, process.log.read_text()
            await asyncio.sleep(0.02)
        assert await flip_status(session) == 303  # to the login page now
    log = process.log.read_text()
    assert "SIGHUP received: reloading the policy files" in log
    assert "policy reloaded (SIGHUP): generation 2" in log


async def test_the_directory_is_listed_off_the_event_loop(
    policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each poll lists the directory and stats every file: with a thousand files that is
    milliseconds every second, which every request on the loop would wait through. The watcher
    does it in a worker thread, as it loads the files (the first look, at start, excepted)."""
    import threading

    from gateway.policy import reload as reload_module

    threads: list[str] = []
    listed = reload_module.policy_entries

    def recording(directory: Path) -> Any:
        threads.append(threading.current_thread().name)
        return listed(directory)

    async with watching(policy_dir) as reloader:
        monkeypatch.setattr(reload_module, "policy_entries", recording)
        write(policy_dir / "globex.yaml", company("Globex", "globex.example"))
        await wait_until(lambda: reloader.holder.generation == 2)
        await reloader.reload_now("test")
    loop_thread = threading.current_thread().name
    assert threads and loop_thread not in threads, threads


async def test_a_loader_bug_is_logged_once_not_at_every_poll(
    policy_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A loader that fails unexpectedly refuses the change and the files are read again only
    when they change (or changed too close to the load to be sure), as after any refusal: not
    a traceback and a full read at every poll."""
    loads: list[int] = []

    def broken(*_args: Any, **_kwargs: Any) -> Policy:
        loads.append(1)
        raise RuntimeError("a loader bug")

    long_ago = time.time() - 60  # files written well before any load: none is racy
    os.utime(policy_dir / "acme.yaml", (long_ago, long_ago))
    async with watching(policy_dir) as reloader:
        monkeypatch.setattr(reload_module, "load_policy_dir", broken)
        staged = policy_dir.parent / "globex.yaml"
        write(staged, company("Globex", "globex.example"))
        os.utime(staged, (long_ago, long_ago))
        staged.rename(policy_dir / "globex.yaml")  # one change, as an operator's atomic write
        await wait_until(lambda: reloader.reloads_refused == 1)
        await asyncio.sleep(INTERVAL * 10)
        assert len(loads) == 1
        assert reloader.reloads_refused == 1
    assert caplog.text.count("the loader failed") == 1
