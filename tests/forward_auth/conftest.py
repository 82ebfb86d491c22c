"""Fixtures for forward auth: an upstream that echoes what it receives, a users file, and a real
nginx (or Caddy) started from the shipped configuration in a temporary prefix."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from yarl import URL

from gateway.identity.portal import hash_password
from tests.support import (
    GatewayProcess,
    code_for,
    csrf_from_page,
    secret_from_page,
    settings_dict,
)

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "gateway.conf"
NGINX_SETTINGS = ROOT / "deploy" / "nginx" / "gateway.yaml"
DOCS = ROOT / "docs" / "forward-auth.md"
AUTH_CACHE = "/var/cache/nginx/gateway-auth"  # the shipped auth cache's directory
PASSWORD = "carol-password"
USER = "carol@example.com"
# Policies for the tests: one company that enforces 2FA, and access rules for the application.
COMPANY = "company: Example\nmembers:\n  domains: [example.com]\nenforce_2fa: true\n"
ACCESS = """applications:
  app:
    - paths: ["/public/**"]
      access: bypass
    - paths: ["/admin/**"]
      methods: [DELETE]
      access: deny
    - paths: ["/internal/**"]
      access: deny
    - paths: ["/light/**"]
      access: one_factor
"""


async def echo(request: web.Request) -> web.Response:
    """The application: says which request and which headers reached it."""
    return web.json_response(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": [[name, value] for name, value in request.headers.items()],
        }
    )


@pytest.fixture
async def echo_upstream() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": {
                    USER: {
                        "password": hash_password(PASSWORD),
                        "name": "Carol Example",
                        "email": USER,
                        "groups": ["billing", "admins"],
                    }
                }
            }
        )
    )
    return path


def received(answer: dict[str, Any], name: str) -> list[str]:
    """Every value of header `name` (any case) the echo upstream received."""
    return [value for key, value in answer["headers"] if key.lower() == name.lower()]


def substitute(text: str, replacements: dict[str, str], times: int = 1) -> str:
    """The shipped file with only these strings changed; each must occur `times` times, so a
    change to the shipped file that the test no longer matches fails loudly."""
    for old, new in replacements.items():
        count = text.count(old)
        assert count == times, f"{old!r} occurs {count} times in the shipped file, not {times}"
        text = text.replace(old, new)
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def require(program: str) -> str:
    """The program's path; a missing one fails the test with what to do (never a silent skip)."""
    found = shutil.which(program) or next(
        (str(p) for p in (Path("/usr/sbin") / program, Path("/usr/bin") / program) if p.exists()),
        None,
    )
    if found is None:
        pytest.fail(f"{program} is not installed: run scripts/setup --test (it installs it)")
    return found


class Nginx:
    """nginx in the foreground, in its own prefix, serving the shipped server block."""

    def __init__(self, prefix: Path, server_block: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "gateway.conf").write_text(server_block)
        temp = "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers can read the temp prefix
        self.error_log = prefix / "error.log"
        (prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}"
            f"    include {prefix / 'gateway.conf'};\n}}\n"
        )
        binary = require("nginx")
        command = [binary, "-p", str(prefix), "-e", str(self.error_log)]
        command += ["-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_port(port, self.process, self.error_log)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.process, signal.SIGQUIT)  # graceful: workers finish, then the master exits


@pytest.fixture
def shipped_gateway(tmp_path: Path, users_file: Path) -> Iterator[GatewayProcess]:
    """A gateway process with the shipped deploy/nginx/gateway.yaml's application and trusted
    proxies, and this test's users file, secrets, store and policies."""
    shipped = yaml.safe_load(NGINX_SETTINGS.read_text())
    applications = shipped["applications"]
    applications["app"]["portal"]["users_file"] = str(users_file)
    settings = settings_dict(
        tmp_path / "gateway",
        applications,
        {"example.yaml": COMPANY, "applications.yaml": ACCESS},
        trusted_proxies=shipped["trusted_proxies"],
    )
    gateway = GatewayProcess.run(tmp_path / "gateway", settings)
    yield gateway
    gateway.stop()


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Nginx] = []

    def start(gateway_port: int, upstream_port: int) -> Nginx:
        port = free_port()
        block = substitute(
            NGINX_CONF.read_text(),
            {
                "server 127.0.0.1:9091;": f"server 127.0.0.1:{gateway_port};",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
                "listen 80;": f"listen 127.0.0.1:{port};",
                "listen 80 default_server;": f"listen 127.0.0.1:{port} default_server;",
                AUTH_CACHE: str(tmp_path / "nginx-auth-cache"),
            },
        )
        nginx = Nginx(tmp_path / "nginx", block, port)
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


def forwarded(
    uri: str, method: str = "GET", host: str = "app.test", style: str = "traefik"
) -> dict[str, str]:
    """How the front proxy describes the original request: Traefik and Caddy send
    X-Forwarded-Method/-Uri, the shipped nginx config X-Original-Method/-URI."""
    if style == "nginx":
        described = {"X-Original-Method": method, "X-Original-URI": uri}
    else:
        described = {"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}
    return {**described, "X-Forwarded-Host": host, "X-Forwarded-Proto": "http"}


class Browser:
    """One browser (its own cookies) talking to a gateway, through a front proxy that sets
    X-Forwarded-For and X-Forwarded-Host (the gateway's pages) or calls the verify endpoints."""

    def __init__(self, base_url: str, host: str = "app.test", client_ip: str = "10.1.2.3") -> None:
        self.host = host
        self.session = aiohttp.ClientSession(
            base_url=base_url,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"X-Forwarded-For": client_ip},
        )

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def page(self, location: str, status: int = 200) -> str:
        """A gateway page, reached on the application's host."""
        async with self.session.get(
            location, headers={"Host": self.host}, allow_redirects=False
        ) as page:
            assert page.status == status, await page.text()
            return await page.text()

    async def go(self, location: str) -> str:
        """A gateway page that sends the browser on: where to."""
        async with self.session.get(
            location, headers={"Host": self.host}, allow_redirects=False
        ) as answer:
            assert answer.status == 303, await answer.text()
            return answer.headers["Location"]

    async def post(self, location: str, data: dict[str, str]) -> str:
        async with self.session.post(
            location, data=data, headers={"Host": self.host}, allow_redirects=False
        ) as answer:
            assert answer.status == 303, await answer.text()
            return answer.headers["Location"]

    async def sign_in(self, rd: str = "%2F", user: str = USER, password: str = PASSWORD) -> str:
        """Password on the gateway's login page; returns the next page."""
        login = f"/.gateway/login?rd={rd}"
        html = await self.page(login)
        form = {"csrf_token": csrf_from_page(html), "username": user, "password": password}
        return await self.post(login, form)

    async def enrol(self, location: str) -> tuple[str, str]:
        """TOTP enrolment on the page at `location`: the secret and where the browser goes."""
        html = await self.page(location)
        secret = secret_from_page(html)
        data = {"csrf_token": csrf_from_page(html), "code": code_for(secret)}
        return secret, await self.post(location, data)

    async def verify(
        self,
        uri: str,
        method: str = "GET",
        style: str = "traefik",
        endpoint: str = "/.gateway/verify",
        extra: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """The front proxy asking about this browser's request (its cookies go along); `extra`
        replaces headers of the same name, each of its lines kept (a multidict may repeat)."""
        headers = CIMultiDict(forwarded(uri, method, self.host, style))
        for name in set((extra or {}).keys()):
            headers.popall(name, None)
        headers.extend((extra or {}).items())
        async with self.session.get(endpoint, headers=headers, allow_redirects=False) as answer:
            await answer.read()
            return answer


# A browser in front of a real front proxy (nginx, Caddy) on the shipped host name.
FRONT_HOST = "app.example.com"


def front_browser(url: str, host: str = FRONT_HOST) -> aiohttp.ClientSession:
    """A browser talking to the front proxy under the application's host name, keeping its
    cookies."""
    return aiohttp.ClientSession(
        base_url=url,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        headers={"Host": host},
    )


async def page_form(session: aiohttp.ClientSession, location: str) -> str:
    async with session.get(location) as page:
        assert page.status == 200, await page.text()
        return await page.text()


async def post(session: aiohttp.ClientSession, location: str, data: dict[str, str]) -> str:
    """Posts the form and returns where the browser is sent next."""
    async with session.post(location, data=data, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]


async def sign_in(session: aiohttp.ClientSession, rd: str) -> str:
    """The gateway's login page through nginx; returns the next page (enrol or challenge)."""
    login = f"/.gateway/login?rd={rd}"
    html = await page_form(session, login)
    form = {"csrf_token": csrf_from_page(html), "username": USER, "password": PASSWORD}
    return await post(session, login, form)


async def get(session: aiohttp.ClientSession, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
    async with session.get(URL(path, encoded=True), allow_redirects=False, **kwargs) as answer:
        await answer.read()
        return answer


# The forward-auth application of the in-process tests: the test client is the front proxy.
TRUSTED = ["127.0.0.1/32"]  # the test client is the front proxy


def forward_auth_app(users: Path, hosts: tuple[str, ...] = ("app.test",)) -> dict[str, Any]:
    return {
        "mode": "forward_auth",
        "hosts": list(hosts),
        "identity": "portal",
        "portal": {"users_file": str(users)},
    }


@pytest.fixture
async def gateway(make_gateway: Any, users_file: Path) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_gateway(
        {"app": forward_auth_app(users_file)},
        {"example.yaml": COMPANY, "applications.yaml": ACCESS},
        trusted_proxies=TRUSTED,
    )
    return client


@pytest.fixture
async def stack(
    echo_upstream: TestServer,
    shipped_gateway: GatewayProcess,
    nginx_factory: Callable[[int, int], Nginx],
) -> tuple[Nginx, GatewayProcess]:
    """nginx from the shipped config in front of the echo upstream and the gateway."""
    assert echo_upstream.port is not None
    return nginx_factory(shipped_gateway.port, echo_upstream.port), shipped_gateway
