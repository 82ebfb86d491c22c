"""`gateway intercept probe` against real applications on real ports: the demo's legacy
application and a PHP-shaped one, with good, wrong and no settings."""

from __future__ import annotations

import asyncio
import hashlib
import html
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from aiohttp import web

from gateway.cli import main
from gateway.demo.legacy import create_legacy_app
from gateway.probe_form import guess_username_field, login_forms, submission
from gateway.settings import settings_from_dict
from tests.support import intercept_app, settings_dict

PASSWORD = "Correct-Horse-7f3e"  # distinctive, so finding it in the output means a leak
USER = "alice@example.com"


class Served:
    """An aiohttp application on a free port, in a thread with its own event loop (the CLI
    runs its own asyncio.run in the test's thread)."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _php_app() -> web.Application:
    """A PHP-shaped application: session_start() on every page sends its PHPSESSID again
    (the same value), a failed login answers 200 with the form, a good one regenerates the id,
    sets a DokuWiki-style remember-me cookie named after a hash, and redirects (302)."""
    sessions: dict[str, str | None] = {}
    remember = "DW" + hashlib.md5(b"/", usedforsecurity=False).hexdigest()

    def start(request: web.Request, response: web.Response, sid: str | None = None) -> str:
        sid = sid or request.cookies.get("PHPSESSID")
        if sid not in sessions:
            sid = secrets.token_hex(13)
            sessions[sid] = None
        response.set_cookie("PHPSESSID", sid, path="/")
        response.set_cookie("lang", "en", path="/")
        return sid

    def form(error: str = "") -> str:
        return f"""<html><body>{html.escape(error)}
<form action="login.php" method="post">
<input type="hidden" name="sectok" value="{secrets.token_hex(8)}">
<input type="text" name="u"> <input type="password" name="p">
<input type="checkbox" name="r" value="1" checked>
<select name="lang"><option>de</option><option selected>en</option></select>
<input type="submit" name="go" value="Log in"></form></body></html>"""

    async def page(request: web.Request) -> web.Response:
        response = web.Response(text=form(), content_type="text/html")
        start(request, response)
        return response

    async def login(request: web.Request) -> web.Response:
        data = await request.post()
        if (data.get("u"), data.get("p"), data.get("go")) != (USER, PASSWORD, "Log in"):
            response = web.Response(text=form("Wrong password"), content_type="text/html")
            start(request, response)
            return response
        response = web.Response(status=302, headers={"Location": "/index.php"})
        sessions.pop(request.cookies.get("PHPSESSID", ""), None)
        new = secrets.token_hex(13)
        sessions[new] = USER
        start(request, response, new)
        if data.get("r") == "1":
            response.set_cookie(remember, secrets.token_hex(8), path="/", httponly=True)
        return response

    async def index(request: web.Request) -> web.Response:
        user = sessions.get(request.cookies.get("PHPSESSID", ""))
        response = web.Response(text=f"<p>Logged in as: <b>{user}</b></p>" if user else "")
        if not user:
            response = web.Response(status=302, headers={"Location": "/login.php"})
        start(request, response)
        return response

    app = web.Application()
    app.router.add_get("/login.php", page)
    app.router.add_post("/login.php", login)
    app.router.add_get("/index.php", index)
    return app


@pytest.fixture
def legacy() -> Iterator[Served]:
    served = Served(create_legacy_app({USER: PASSWORD}))
    yield served
    served.stop()


@pytest.fixture
def php() -> Iterator[Served]:
    served = Served(_php_app())
    yield served
    served.stop()


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PROBE_PASSWORD", PASSWORD)
    return "PROBE_PASSWORD"


def _settings(tmp_path: Path, app: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(settings_dict(tmp_path, {"app": app})))
    return path


def _probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["intercept", "probe", "--user", USER, *args])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


def test_good_legacy_settings_pass(
    tmp_path: Path, legacy: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The legacy application with right settings and whoami: every check passes, exit 0."""
    app = intercept_app(legacy.url)
    app["intercept"]["whoami"] = {"path": "/api/me", "json": "user"}
    config = _settings(tmp_path, app)
    code, out, _ = _probe(capsys, "-c", str(config), "--app", "app", "--password-env", password)
    assert code == 0, out
    assert "FAIL:" not in out
    assert "ok: the right password is judged SUCCESS" in out
    assert f"whoami names {USER}" in out
    assert "ok: the wrong password is judged FAILURE" in out
    assert (
        "ok: legacy_session, given a new value by the successful login only, is a session cookie"
        in out
    )
    assert "ok: the form's action POST /login is the settings' login request" in out
    assert "field: csrf, hidden, value of 32 characters" in out
    assert "user name field: username" in out
    assert "whoami: GET /api/me answered 401: nobody" in out
    assert f"whoami: GET /api/me answered 200: {USER}" in out


def test_suggestion_without_settings_validates(
    tmp_path: Path, legacy: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without settings the suggested block names what the login showed and passes validation."""
    code, out, _ = _probe(
        capsys, "--upstream", legacy.url, "--login-page", "/", "--password-env", password
    )
    assert code == 0, out
    assert f"login page: GET {legacy.url}/login\n  redirected from {legacy.url}/\n" in out
    assert "checks of" not in out
    block = yaml.safe_load(out[out.index("\nintercept:") :])
    assert block["intercept"]["session_cookies"] == ["legacy_session"]
    assert block["intercept"]["login"] == {
        "path": "/login",
        "method": "POST",
        "username_field": "username",
        "success": {"status": [302]},
    }
    assert "# whoami:" in out
    app = {"upstream": legacy.url, "hosts": ["*"], "identity": "intercept", **block}
    settings = settings_from_dict(settings_dict(tmp_path, {"app": app}), tmp_path / "g.yaml")
    assert settings.applications[0].intercept is not None


def test_php_application_good_settings(
    tmp_path: Path, php: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session cookie sent again on a failed login is no success: 302 and new cookies are."""
    app = intercept_app(php.url)
    app["intercept"] = {
        "session_cookies": ["PHPSESSID", "DW*"],
        "login": {"path": "/login.php", "username_field": "u", "success": {"status": [302]}},
    }
    config = _settings(tmp_path, app)
    code, out, _ = _probe(capsys, "-c", str(config), "--app", "app", "--password-env", password)
    assert code == 0, out
    assert "ok: the wrong password is judged FAILURE" in out
    assert "Set-Cookie PHPSESSID: the value it was sent" in out
    assert "Set-Cookie lang: the value it was sent" in out
    assert (
        "ok: PHPSESSID, given a new value by the successful login only, is a session cookie" in out
    )
    assert 'ok: session_cookies "DW*" matches DW' in out
    assert "field: sectok, hidden, value of 16 characters" in out
    assert "field: r, checkbox, checked" in out


def test_php_application_suggestion(
    tmp_path: Path, php: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The suggestion for the PHP application: its own cookies only, the hashed name as DW*."""
    code, out, _ = _probe(
        capsys, "--upstream", php.url, "--login-page", "/login.php", "--password-env", password
    )
    assert code == 0, out
    assert "user name field: u" in out
    block = yaml.safe_load(out[out.index("\nintercept:") :])
    assert block["intercept"]["session_cookies"] == ["PHPSESSID", "DW*"]
    assert block["intercept"]["login"]["success"] == {"status": [302]}
    app = {"upstream": php.url, "hosts": ["*"], "identity": "intercept", **block}
    settings_from_dict(settings_dict(tmp_path, {"app": app}), tmp_path / "g.yaml")


def test_wrong_session_cookies_fail(
    tmp_path: Path, php: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """session_cookies naming a cookie the application never sets: UNCLEAR and FAIL lines, exit 1."""
    app = intercept_app(php.url)
    app["intercept"] = {
        "session_cookies": ["SESSID"],
        "login": {"path": "/login.php", "username_field": "u", "success": {"status": [302]}},
    }
    config = _settings(tmp_path, app)
    code, out, _ = _probe(capsys, "-c", str(config), "--app", "app", "--password-env", password)
    assert code == 1
    assert "FAIL: the right password is judged UNCLEAR" in out
    assert "FAIL: PHPSESSID, given a new value by the successful login only, is not matched" in out
    assert 'FAIL: session_cookies "SESSID" matches no cookie the application set' in out
    assert "ok: the wrong password is judged FAILURE" in out


def test_wrong_login_path_and_field_fail(
    tmp_path: Path, legacy: Served, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A login path and user-name field the form does not use are reported, and the exit is 1."""
    app = intercept_app(legacy.url)
    app["intercept"]["login"] = {"path": "/signin", "username_field": "email"}
    config = _settings(tmp_path, app)
    code, out, _ = _probe(
        capsys,
        *("-c", str(config), "--app", "app", "--login-page", "/login"),
        *("--password-env", password),
    )
    assert code == 1
    assert "FAIL: the form's action is POST /login, the settings' login POST /signin" in out
    assert 'FAIL: the form has no field "email" (username_field)' in out


def _echoing_app() -> web.Application:
    """A careless application that puts the password it was sent in its redirect and cookie."""

    async def page(request: web.Request) -> web.Response:
        text = '<form method="post"><input name="user"><input type="password" name="pw"></form>'
        return web.Response(text=text, content_type="text/html")

    async def login(request: web.Request) -> web.Response:
        data = await request.post()
        tried = str(data.get("pw", ""))
        target = "/home" if tried == PASSWORD else f"/login?tried={quote(tried)}&raw={tried}"
        response = web.Response(status=302, headers={"Location": target})
        response.set_cookie("sid", secrets.token_hex(8) if tried == PASSWORD else tried)
        return response

    app = web.Application()
    app.router.add_get("/login", page)
    app.router.add_post("/login", login)
    return app


def test_password_never_printed(password: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A password the application echoes back (in its Location, as sent) is never printed."""
    served = Served(_echoing_app())
    try:
        code, out, _ = _probe(capsys, "--upstream", served.url, "--password-env", password)
    finally:
        served.stop()
    assert code == 0, out
    assert "Location: /login?tried=***&raw=***" in out
    assert "failure: {location: [/login]}" in out
    assert "Correct" not in out


def test_missing_password_variable_is_a_usage_error(
    legacy: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--password-env naming an unset variable: exit 2 and a message naming it."""
    monkeypatch.delenv("NO_SUCH_PROBE_VAR", raising=False)
    code, out, err = _probe(capsys, "--upstream", legacy.url, "--password-env", "NO_SUCH_PROBE_VAR")
    assert code == 2
    assert "NO_SUCH_PROBE_VAR" in err and "not set" in err
    assert out == ""


def test_no_password_off_a_terminal_is_a_usage_error(
    legacy: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --password-env and not on a terminal the probe asks for it and exits 2."""
    code, _, err = _probe(capsys, "--upstream", legacy.url)
    assert code == 2
    assert "--password-env" in err


def test_unreachable_application_exits_1(password: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening: the login could not be done, said plainly, exit 1."""
    code, out, _ = _probe(capsys, "--upstream", "http://127.0.0.1:9", "--password-env", password)
    assert code == 1
    assert "the login could not be done: cannot talk to http://127.0.0.1:9" in out


def test_form_is_filled_in_as_a_browser_would() -> None:
    """Enabled named controls, checked boxes, a select's first option and the first submit go."""
    page = """<form action="/other"><input name="q"></form>
<form method="post" action="sign-in?next=%2F"><form action="/ignored">
<input type="email" name="mail"><input name="nick" disabled>
<input type="password" name="pw"><input name="otp">
<input type="checkbox" name="keep"><input type="radio" name="r" value="a" checked>
<select name="tz"><option value="utc">UTC</option><option value="cet">CET</option></select>
<textarea name="note">hi &amp; bye</textarea><button type="button" name="b">x</button>
<button name="go" value="1">Sign in</button><input type="submit" name="alt" value="2">
</form>"""
    (form,) = login_forms(page, "http://app.example/account/login")
    assert (form.method, form.action) == ("POST", "http://app.example/account/sign-in?next=%2F")
    assert guess_username_field(form) == "mail"
    assert submission(form, "mail", "alice", "secret") == [
        ("mail", "alice"),
        ("pw", "secret"),
        ("otp", ""),
        ("r", "a"),
        ("tz", "utc"),
        ("note", "hi & bye"),
        ("go", "1"),
    ]
