"""Helpers shared by the tests: configuration on disk, gateway processes, sign-in steps."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import yaml

from gateway.crypto import generate_key

DEFAULT_POLICY = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_dict(
    tmp: Path,
    applications: dict[str, Any],
    policies: dict[str, str] | None = None,
    port: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Settings for a gateway whose secrets, store and policies live under `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    policy_dir = tmp / "policies"
    policy_dir.mkdir(exist_ok=True)
    for name, text in (
        policies if policies is not None else {"example.yaml": DEFAULT_POLICY}
    ).items():
        (policy_dir / name).write_text(text)
    (tmp / "session-keys").write_text(secrets.token_urlsafe(48))
    (tmp / "encryption-key").write_text(generate_key())
    data: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": port or free_port()},
        "policy_dir": str(policy_dir),
        "store": f"sqlite://{tmp / 'gateway.db'}",
        "secrets": {
            "session_keys": {"file": str(tmp / "session-keys")},
            "encryption_key": {"file": str(tmp / "encryption-key")},
        },
        "applications": applications,
    }
    data.update(extra)
    return data


def intercept_app(upstream: str, **overrides: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "intercept",
        "intercept": {
            "session_cookies": ["legacy_session"],
            "login": {"path": "/login", "method": "POST", "username_field": "username"},
            "logout": {"path": "/logout", "methods": ["POST"]},
        },
    }
    app.update(overrides)
    return app


def legacy_whoami(app: dict[str, Any]) -> dict[str, Any]:
    """intercept_app() settings for the demo's legacy application, with its whoami page."""
    app["intercept"]["whoami"] = {"path": "/api/me", "json": "user"}
    return app


LEGACY_CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')


async def legacy_logout(client: Any) -> Any:
    """The legacy application's sign-out: its "are you sure?" page, then its POST."""
    page = await client.get("/logout")
    match = LEGACY_CSRF_RE.search(await page.text())
    assert match, "no sign-out form"
    return await client.post("/logout", data={"csrf": match.group(1)}, allow_redirects=False)


def portal_app(upstream: str, users: Path, **overrides: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "portal",
        "portal": {"users_file": str(users)},
    }
    app.update(overrides)
    return app


async def portal_login(
    client: Any, user: str, password: str, rd: str = "%2F", headers: dict[str, str] | None = None
) -> Any:
    """The gateway's login page, then its form (both with `headers`); returns the answer (303
    on success)."""
    page = await client.get(f"/.gateway/login?rd={rd}", headers=headers)
    token = csrf_from_page(await page.text())
    return await client.post(
        f"/.gateway/login?rd={rd}",
        data={"csrf_token": token, "username": user, "password": password},
        headers=headers,
        allow_redirects=False,
    )


def wait_http(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")


class GatewayProcess:
    """`gateway run` (or `gateway demo`) in its own process, so its memory can be measured."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_http(f"{self.url}/.gateway/healthz", process=self.process)
        except Exception:
            self.stop()
            raise RuntimeError(log.read_text()) from None

    @classmethod
    def run(cls, tmp: Path, settings: dict[str, Any], name: str = "gateway") -> GatewayProcess:
        """`gateway run` with `settings` written to tmp/NAME.yaml; its log in tmp/NAME.log."""
        config = tmp / f"{name}.yaml"
        config.write_text(yaml.safe_dump(settings))
        return cls(["run", "-c", str(config)], settings["listen"]["port"], tmp / f"{name}.log")

    @classmethod
    def demo(cls, tmp: Path) -> GatewayProcess:
        port = free_port()
        return cls(
            ["demo", "--port", str(port), "--data-dir", str(tmp / "demo")], port, tmp / "demo.log"
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


SECRET_RE = re.compile(r'data-secret="([A-Z2-7]+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def secret_from_page(html: str) -> str:
    match = SECRET_RE.search(html)
    assert match, "no secret on the enrolment page"
    return match.group(1)


def csrf_from_page(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def code_for(secret: str, at: float | None = None, offset_steps: int = 0) -> str:
    moment = time.time() if at is None else at
    return str(pyotp.TOTP(secret).at(moment + 30 * offset_steps))


async def enrol_totp(
    client: Any, location: str, clock: Callable[[], float] | None = None
) -> tuple[str, Any]:
    """On the gateway's enrolment page at `location`: read the key and confirm it with its code
    (at `clock()`; without one, at the in-process gateway's own time, or the real time for a
    gateway in another process). Asserts the answer is 303 (on to the application); returns
    the secret and the answer."""
    page = await client.get(location)
    html = await page.text()
    assert page.status == 200, html
    secret = secret_from_page(html)
    answer = await client.post(
        location,
        data={
            "csrf_token": csrf_from_page(html),
            "code": code_for(secret, _time_of(client, clock)),
        },
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    return secret, answer


async def enrol_after_login(
    client: Any, login: Any, clock: Callable[[], float] | None = None
) -> str:
    """After a login the gateway took (`login`, its answer: 303 to the enrolment page), enrol an
    authenticator there (enrol_totp); returns its secret."""
    assert login.status == 303, await login.text()
    location = login.headers["Location"]
    assert location.startswith("/.gateway/enrol"), location
    secret, _ = await enrol_totp(client, location, clock)
    return secret


def _time_of(client: Any, clock: Callable[[], float] | None) -> float | None:
    if clock is not None:
        return clock()
    return gateway_now(client) if hasattr(client, "server") else None


def gateway_now(client: Any) -> float:
    """The time on the clock of the in-process gateway behind `client` (a test's FixedClock, or
    the real time): codes are computed for the gateway's time, never mixed with the real one."""
    from gateway.keys import RUNTIME

    return float(client.server.app[RUNTIME].clock())
