"""Django's admin site, a real third-party application, for the compatibility suite.

Django, gunicorn (the WSGI server) and WhiteNoise (so the admin's own CSS and JavaScript are
served with DEBUG off) are installed once from PyPI into their own virtual environment under
`.compat/` (gitignored) and reused by later runs. Each test session generates a fresh project
with `django-admin startproject`, migrates its SQLite database, creates two superusers with
`createsuperuser --noinput`, and serves it with gunicorn on a free port. Gunicorn's access log
records the Authorization header of each request it gets, so a test can tell whether a
credential reached the application.

The generic pieces (the cached environment, the server process) are used by app_flask.py too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    GatewayProcess,
    code_for,
    csrf_from_page,
    free_port,
    secret_from_page,
    settings_dict,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = ROOT / ".compat"

DJANGO_VERSION = "5.2.19"
REQUIREMENTS = [f"Django=={DJANGO_VERSION}", "gunicorn==27.0.1", "whitenoise==6.12.0"]

ALICE = "alice@example.com"
ALICE_PASSWORD = "alice-Django-pw-1"
MALLORY = "mallory@example.com"
MALLORY_PASSWORD = "mallory-Django-pw-1"

ACCESS_LOG_FORMAT = "%(m)s %(U)s?%(q)s %(s)s auth=%({authorization}i)s"

# appended to the generated settings.py
SETTINGS_TAIL = """
# --- added by tests/compat/app_django.py ---
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
"""


def cached_venv(name: str, requirements: list[str]) -> Path:
    """A virtual environment at .compat/NAME holding `requirements`, installed once: a file
    COMPLETE (listing them) is written last, so a half-finished install is thrown away and done
    again. A lock file keeps two test processes from installing at the same time."""
    COMPAT_DIR.mkdir(exist_ok=True)
    target = COMPAT_DIR / name
    marker = target / "COMPLETE"
    wanted = "\n".join(requirements) + "\n"
    with (COMPAT_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return target
        shutil.rmtree(target, ignore_errors=True)
        run([sys.executable, "-m", "venv", "--without-pip", str(target)])
        run(
            [
                sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"),
                "install", "--quiet", "--disable-pip-version-check", "--no-input", *requirements,
            ]
        )  # fmt: skip
        marker.write_text(wanted)
    return target


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Runs a command to its end; its output goes into the failure message when it fails."""
    done = subprocess.run(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n{output}")
    return output


class ServerProcess:
    """A third-party server in its own process, its output in a log file, stopped by SIGTERM
    (SIGKILL after 10 s)."""

    def __init__(
        self, args: list[str], port: int, log: Path, ready_path: str, cwd: Path,
        env: dict[str, str] | None = None, timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        try:
            wait_http(self.url + ready_path, timeout=timeout, process=self.process)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{args[0]} did not start: {exc}\n{log.read_text()}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@contextlib.contextmanager
def timed(what: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    yield
    timings[what] = round(time.monotonic() - start, 2)


@dataclass
class DjangoAdmin:
    """A running Django admin site: its base URL, and the users it has."""

    url: str
    project: Path
    venv: Path
    server: ServerProcess
    timings: dict[str, float]
    access_log: Path

    def seen(self, marker: str) -> list[str]:
        """The access log lines of the requests whose URL holds `marker` (each ends with
        `auth=<the Authorization header the application got, or ->`)."""
        time.sleep(0.2)  # gunicorn writes the line once the answer is sent
        return [line for line in self.access_log.read_text().splitlines() if marker in line]

    def last_login(self, user: str) -> str | None:
        """When Django last signed `user` in (auth_user.last_login), read from its database."""
        with contextlib.closing(sqlite3.connect(self.project / "db.sqlite3")) as db:
            row = db.execute("SELECT last_login FROM auth_user WHERE username = ?", (user,))
            found = row.fetchone()
        return None if found is None else found[0]


def start_django_admin(tmp: Path) -> DjangoAdmin:
    """Installs (once), generates a project under `tmp`, and serves it on a free port."""
    timings: dict[str, float] = {}
    with timed("install", timings):
        venv = cached_venv(f"django-{DJANGO_VERSION}", REQUIREMENTS)
    python = str(venv / "bin" / "python")
    project = tmp / "site"
    project.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    with timed("project", timings):
        run([str(venv / "bin" / "django-admin"), "startproject", "compatsite", str(project)])
        settings = project / "compatsite" / "settings.py"
        settings.write_text(settings.read_text() + SETTINGS_TAIL)
        run([python, "manage.py", "migrate", "--noinput"], cwd=project, env=env)
        for user, password in ((ALICE, ALICE_PASSWORD), (MALLORY, MALLORY_PASSWORD)):
            run(
                [python, "manage.py", "createsuperuser", "--noinput",
                 "--username", user, "--email", user],
                cwd=project, env={**env, "DJANGO_SUPERUSER_PASSWORD": password},
            )  # fmt: skip
        run([python, "manage.py", "collectstatic", "--noinput"], cwd=project, env=env)
    port = free_port()
    with timed("start", timings):
        server = ServerProcess(
            [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--threads", "8", "--no-control-socket", "--access-logfile", str(tmp / "access.log"),
             "--access-logformat", ACCESS_LOG_FORMAT, "compatsite.wsgi:application"],
            port, tmp / "gunicorn.log", "/admin/login/", cwd=project, env=env,
        )  # fmt: skip
    return DjangoAdmin(server.url, project, venv, server, timings, tmp / "access.log")


@pytest.fixture(scope="session", name="django_admin")
def django_admin_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoAdmin]:
    """Django's admin site served by gunicorn, once for the test session."""
    admin = start_django_admin(tmp_path_factory.mktemp("django"))
    print(f"django admin at {admin.url}, timings {admin.timings}")
    try:
        yield admin
    finally:
        admin.server.stop()


# --- steps through the gateway, shared with test_flask.py --------------------------------------

Client = Any  # aiohttp's TestClient around the in-process gateway (tests/conftest.py)


def jar_cookie(client: Client, name: str) -> str | None:
    """The value of cookie `name` in the client's jar (what the browser holds), or None."""
    for morsel in client.session.cookie_jar:
        if morsel.key == name:
            return str(morsel.value)
    return None


def set_cookie_names(response: Any) -> list[str]:
    """The names of the cookies an answer sets (or deletes)."""
    return [line.split("=", 1)[0].strip() for line in response.headers.getall("Set-Cookie", [])]


async def enrol_totp(client: Client, location: str) -> tuple[str, Any]:
    """On the gateway's enrolment page: take the key and confirm it with its current code.
    Returns the secret and the answer (303 on to the application)."""
    page = await client.get(location)
    assert page.status == 200, await page.text()
    html = await page.text()
    secret = secret_from_page(html)
    answer = await client.post(
        location,
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret)},
        allow_redirects=False,
    )
    return secret, answer


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


def probe() -> str:
    """A marker to put in a URL, to find the request in the application's access log."""
    return "probe" + secrets.token_hex(6)


# --- a browser, and a gateway in its own process, for the browser tests -------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/e2e/conftest.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium_page() -> Iterator[Any]:
    """A page in a fresh profile of Debian's Chromium, headless, driven by Playwright's sync API
    (the test must not be async); skips when Chromium is not installed."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run this")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


@contextlib.contextmanager
def gateway_process(tmp: Path, name: str, app_settings: dict[str, Any]) -> Iterator[str]:
    """`gateway run` in its own process in front of one application; yields its base URL."""
    data = settings_dict(tmp, {name: app_settings}, port=free_port())
    process = GatewayProcess.run(tmp, data)
    try:
        yield process.url
    finally:
        process.stop()


def browser_enrol(page: Any) -> str:
    """On the gateway's enrolment page: read the key, type its current code, confirm."""
    secret = page.locator("code#secret").get_attribute("data-secret")
    assert secret, "the enrolment page shows no secret"
    page.get_by_label("6-digit code").fill(code_for(secret))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm and continue").click()
    return str(secret)
