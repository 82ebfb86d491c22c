"""`gateway run --workers N`: N processes on one address behave as one gateway."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.identity.portal import hash_password
from tests.support import (
    GatewayProcess,
    code_for,
    csrf_from_page,
    free_port,
    portal_app,
    secret_from_page,
    settings_dict,
)

USER = "carol@example.com"


def _workers(
    supervisor: int, port: int, count: int, gone: int | None = None, timeout: float = 20.0
) -> list[int]:
    """The supervisor's children that listen on `port`, once there are `count` of them (and
    `gone` is not among them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for child in psutil.Process(supervisor).children():
            try:
                listening = [
                    c
                    for c in child.net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port
                ]
            except psutil.NoSuchProcess:
                continue
            if listening and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        if len(found) == count and gone not in found:
            return sorted(found)
        time.sleep(0.1)
    raise AssertionError(f"expected {count} listening workers, found {found}")


def _owners(pids: list[int], port: int) -> set[int]:
    """Which of the worker processes hold an accepted connection on `port`."""
    owners = set()
    for pid in pids:
        connections = psutil.Process(pid).net_connections(kind="tcp")
        if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in connections):
            owners.add(pid)
    return owners


async def _get(port: int, cookie: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cookie: str) -> bytes:
    writer.write(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: gateway_session={cookie}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def _sign_in(url: str) -> str:
    """Password, TOTP enrolment, through the workers; returns the verified session cookie."""
    async with ClientSession(base_url=url, cookie_jar=CookieJar(unsafe=True)) as browser:
        page = await browser.get("/.gateway/login?rd=%2F")
        signed_in = await browser.post(
            "/.gateway/login?rd=%2F",
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "username": USER,
                "password": "pw",
            },
            allow_redirects=False,
        )
        location = signed_in.headers["Location"]
        html = await (await browser.get(location)).text()
        done = await browser.post(
            location,
            data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
            allow_redirects=False,
        )
        assert done.status == 303, await done.text()
        cookie = browser.cookie_jar.filter_cookies(browser._base_url)["gateway_session"]  # type: ignore[arg-type]
        return cookie.value


async def test_workers_share_sessions_and_restart_a_dead_one(tmp_path: Path) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.headers.get('Remote-User')}")

    upstream_app = web.Application()
    upstream_app.router.add_get("/", hello)
    upstream = TestServer(upstream_app)
    await upstream.start_server()
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password('pw')}'\n")
    port = free_port()
    settings = settings_dict(
        tmp_path, {"app": portal_app(str(upstream.make_url("")).rstrip("/"), users)}, port=port
    )
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings))
    gateway = await asyncio.to_thread(
        GatewayProcess, ["run", "-c", str(config), "--workers", "2"], port, tmp_path / "log"
    )
    try:
        pids = await asyncio.to_thread(_workers, gateway.pid, port, 2)
        cookie = await _sign_in(gateway.url)
        # Many connections at once: the kernel spreads them over both workers, and each
        # worker honours the session the other made.
        connections = [await _get(port, cookie) for _ in range(24)]
        for _ in range(50):
            if len(_owners(pids, port)) == 2:
                break
            await asyncio.sleep(0.1)
        assert _owners(pids, port) == set(pids)
        answers = await asyncio.gather(*(_ask(r, w, cookie) for r, w in connections))
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert answer.endswith(f"hello {USER}".encode())

        psutil.Process(pids[0]).send_signal(signal.SIGKILL)
        replaced = await asyncio.to_thread(_workers, gateway.pid, port, 2, pids[0])
        assert pids[0] not in replaced and pids[1] in replaced
        reader, writer = await _get(port, cookie)
        assert (await _ask(reader, writer, cookie)).startswith(b"HTTP/1.1 200")
    finally:
        children = psutil.Process(gateway.pid).children()
        await asyncio.to_thread(gateway.stop)
        await upstream.close()
    assert gateway.process.returncode == 0
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive  # stopping the supervisor stopped every worker
    assert "all workers stopped" in (tmp_path / "log").read_text()


def test_workers_refuse_a_broken_policy_once(tmp_path: Path, capsys: Any) -> None:
    """With several workers the settings and policy are checked once, before any starts."""
    settings = settings_dict(
        tmp_path,
        {"app": portal_app("http://127.0.0.1:9", tmp_path / "users.yaml")},
        policies={
            "bad.yaml": "company: Bad\nmembers:\n  domains: [bad.example]\nattempts:\n  free: x\n"
        },
    )
    (tmp_path / "users.yaml").write_text("users: {}\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["run", "-c", str(config), "--workers", "3"]) == 1
    errors = capsys.readouterr().err
    assert errors.count("bad.yaml:5") == 1


@pytest.mark.parametrize("count", ["0", "65", "two"])
def test_worker_count_is_checked(count: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--workers", count])
    assert exit_.value.code == 2
    assert "from 1 to 64" in capsys.readouterr().err


async def test_workers_end_with_their_supervisor_and_the_address_is_not_shared(
    tmp_path: Path,
) -> None:
    """A killed supervisor leaves no orphaned workers serving an old configuration, and a
    second gateway on an address the workers serve refuses to start instead of splitting it."""
    port = free_port()
    settings = settings_dict(
        tmp_path, {"app": portal_app("http://127.0.0.1:9", tmp_path / "users.yaml")}, port=port
    )
    (tmp_path / "users.yaml").write_text("users: {}\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings))
    gateway = await asyncio.to_thread(
        GatewayProcess, ["run", "-c", str(config), "--workers", "2"], port, tmp_path / "log"
    )
    try:
        pids = await asyncio.to_thread(_workers, gateway.pid, port, 2)
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "run", "-c", str(config), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"127.0.0.1:{port} is already in use" in second.stderr
        single = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "run", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert single.returncode == 1 and "cannot start" in single.stderr
        workers = [psutil.Process(pid) for pid in pids]
        gateway.process.kill()  # no chance to stop its workers itself
        gateway.process.wait()
        _gone, alive = await asyncio.to_thread(psutil.wait_procs, workers, 10)
        assert not alive, "workers outlived their supervisor"
    finally:
        await asyncio.to_thread(gateway.stop)
