"""What the compatibility tests share: installs cached under `.compat/` (gitignored), a
third-party server in its own process, the session fixtures' start and stop, and the steps
through the gateway that do not depend on the application."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession, CookieJar

from tests.support import (
    GatewayProcess,
    code_for,
    csrf_from_page,
    free_port,
    settings_dict,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = ROOT / ".compat"

Client = Any  # aiohttp's TestClient around the in-process gateway (tests/conftest.py)


# --- installs and processes --------------------------------------------------------------------


def run(
    args: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Runs a command to its end; its output goes into the failure message when it fails."""
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n{output}")
    return output


def cached(
    target: Path, wanted: str, build: Callable[[], object], marker: str = "COMPLETE"
) -> Path:
    """`target` (under .compat/), made by build() once: a file `marker` holding `wanted` is
    written last, so a half-finished or different build is thrown away and done again. A lock
    file beside it keeps two test processes from building at the same time."""
    COMPAT_DIR.mkdir(exist_ok=True)
    done = target / marker
    with (COMPAT_DIR / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and done.read_text() == wanted:
            return target
        shutil.rmtree(target, ignore_errors=True)
        build()
        done.write_text(wanted)
    return target


def cached_venv(name: str, requirements: list[str]) -> Path:
    """A virtual environment at .compat/NAME holding `requirements`, installed once (cached)."""
    target = COMPAT_DIR / name
    python = str(target / "bin" / "python")

    def build() -> None:
        run([sys.executable, "-m", "venv", "--without-pip", str(target)])
        run(
            [sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
             "--disable-pip-version-check", "--no-input", *requirements]
        )  # fmt: skip

    return cached(target, "\n".join(requirements) + "\n", build)


class ServerProcess:
    """A third-party server in its own process, its output in a log file, ready once
    `ready_path` answers 200; stopped by SIGTERM (SIGKILL after 10 s). With `own_group` it is
    started in a process group of its own, and stopped with the workers it forks."""

    def __init__(
        self, args: list[str], port: int, log: Path, ready_path: str, cwd: Path,
        env: dict[str, str] | None = None, timeout: float = 60.0, own_group: bool = False,
    ) -> None:  # fmt: skip
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.own_group = own_group
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )  # fmt: skip
        try:
            wait_http(self.url + ready_path, timeout=timeout, process=self.process)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{args[0]} did not start: {exc}\n{log.read_text()}") from None

    def _signal(self, number: int) -> None:
        if self.own_group:  # its own session: the group id is its pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)
        elif self.process.poll() is None:
            self.process.send_signal(number)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        if self.own_group:  # forked workers may outlive the parent a moment
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.process.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                self._signal(signal.SIGKILL)
        self._log_file.close()


@contextlib.contextmanager
def timed(what: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    yield
    timings[what] = round(time.monotonic() - start, 2)


@dataclass
class RunningApp:
    """A third-party application a test session started: its server process."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()


App = TypeVar("App", bound=RunningApp)


def served(
    start: Callable[[Path], App], tmp: Path, install: Callable[[], None] | None = None
) -> Iterator[App]:
    """A session fixture's body: install() (the test skips when it raises RuntimeError), then
    start(tmp); yields the application and stops it afterwards."""
    if install is not None:
        try:
            install()
        except RuntimeError as exc:
            pytest.skip(str(exc))
    app = start(tmp)
    print(f"{type(app).__name__} at {app.url}, timings {getattr(app, 'timings', '-')}")
    try:
        yield app
    finally:
        app.stop()


# --- steps through the gateway -------------------------------------------------------------------


def jar_cookie(client: Client | ClientSession, name: str) -> str | None:
    """The value of cookie `name` in the client's jar (what the browser holds), or None."""
    jar = client.cookie_jar if isinstance(client, ClientSession) else client.session.cookie_jar
    for morsel in jar:
        if morsel.key == name:
            return str(morsel.value)
    return None


def set_cookie_names(response: Any) -> list[str]:
    """The names of the cookies an answer sets (or deletes)."""
    return [line.split("=", 1)[0].strip() for line in response.headers.getall("Set-Cookie", [])]


async def pass_challenge(client: Client, location: str, secret: str) -> Any:
    """On the gateway's challenge page: a code not used before (the next step's, which is
    accepted too). Returns the answer (303 on to the application)."""
    page = await client.get(location)
    assert page.status == 200, await page.text()
    return await client.post(
        location,
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "code": code_for(secret, offset_steps=1),
        },
        allow_redirects=False,
    )


async def enrolment_opens(client: Client, path: str = "/.gateway/enrol") -> bool:
    """Whether the gateway shows this client an enrolment page (with a key) at `path`."""
    page = await client.get(path, allow_redirects=False)
    return page.status == 200 and "data-secret" in await page.text()


async def token_on_page(client: Client, path: str, field: re.Pattern[str]) -> str:
    """The application's CSRF token: `field`'s group on the page at `path` (200)."""
    page = await client.get(path)
    assert page.status == 200, page.status
    match = field.search(await page.text())
    assert match, f"no CSRF field on {path}"
    return match.group(1)


async def named_on_page(client: Client, path: str, pattern: str) -> str | None:
    """Whom the application's page at `path` names as signed in (`pattern`'s group), or None
    (also when the page does not open)."""
    page = await client.get(path, allow_redirects=False)
    if page.status != 200:
        return None
    match = re.search(pattern, await page.text())
    return match.group(1) if match else None


async def stranger_get(url: Any, headers: dict[str, str]) -> tuple[int, str]:
    """A GET from a client of its own (no cookies but those in `headers`, no redirects
    followed): the status and the text."""
    async with ClientSession() as stranger:
        response = await stranger.get(url, headers=headers, allow_redirects=False)
        return response.status, await response.text()


@contextlib.asynccontextmanager
async def another_browser(client: Client) -> AsyncIterator[ClientSession]:
    """A second browser (its own cookies) on the same gateway."""
    base = str(client.make_url("/"))
    async with ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True)) as browser:
        yield browser


def probe() -> str:
    """A marker to put in a URL, to find the request in the application's access log."""
    return "probe" + secrets.token_hex(6)


# --- in a browser --------------------------------------------------------------------------------


@contextlib.contextmanager
def gateway_process(
    tmp: Path, name: str, app_settings: dict[str, Any], policies: dict[str, str] | None = None
) -> Iterator[str]:
    """`gateway run` in its own process in front of one application; yields its base URL."""
    data = settings_dict(tmp, {name: app_settings}, policies, port=free_port())
    process = GatewayProcess.run(tmp, data)
    try:
        yield process.url
    finally:
        process.stop()


def failures(page: Any) -> list[str]:
    """A list that fills with the page's failed answers (400 and up) and script errors."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("pageerror", lambda error: failed.append(f"script error: {error}"))
    return failed
