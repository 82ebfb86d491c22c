"""A small "legacy" application for the demo and the tests, with the habits of real ones: a
session cookie set before login (for its CSRF token), a new session id at login, its own logout,
a WebSocket, and static files."""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

COOKIE = "legacy_session"


@dataclass
class LegacySession:
    csrf: str = field(default_factory=lambda: secrets.token_hex(16))
    user: str | None = None


SESSIONS: web.AppKey[dict[str, LegacySession]] = web.AppKey("sessions")
ACCOUNTS: web.AppKey[dict[str, str]] = web.AppKey("accounts")

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/legacy.css"></head>
<body><header><p class="brand">Acme Legacy Billing</p></header><main>{body}</main></body></html>"""
_CSS = "body{font-family:sans-serif;margin:2rem;max-width:40rem}.brand{font-weight:bold}"


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=html.escape(title), body=body),
        status=status,
        content_type="text/html",
    )


def _session(request: web.Request) -> tuple[str | None, LegacySession | None]:
    sid = request.cookies.get(COOKIE)
    return (sid, request.app[SESSIONS].get(sid)) if sid else (None, None)


def _login_form(session: LegacySession, error: str = "") -> str:
    message = f'<p role="alert" class="error">{html.escape(error)}</p>' if error else ""
    return f"""<h1>Sign in to Legacy Billing</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{session.csrf}">
<p><label for="username">Email</label><br>
<input id="username" name="username" autocomplete="username"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button type="submit">Sign in</button></p></form>"""


async def login_form(request: web.Request) -> web.Response:
    sid, session = _session(request)
    if session is not None and session.user:
        raise web.HTTPFound("/")
    response = _page("Sign in", "")
    if session is None:  # like PHP: a session (and its CSRF token) before anyone signs in
        sid, session = secrets.token_hex(16), LegacySession()
        request.app[SESSIONS][sid] = session
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax", path="/")
    response.text = _PAGE.format(title="Sign in", body=_login_form(session))
    return response


async def login_submit(request: web.Request) -> web.Response:
    sid, session = _session(request)
    form = await request.post()
    if session is None or form.get("csrf") != session.csrf:
        return _page("Sign in", "<p>Your form expired. <a href='/login'>Try again</a>.</p>", 400)
    username = str(form.get("username", "")).strip().lower()
    if request.app[ACCOUNTS].get(username) != form.get("password"):
        return _page("Sign in", _login_form(session, "Invalid email or password."), 200)
    request.app[SESSIONS].pop(sid or "", None)
    new_sid = secrets.token_hex(16)  # a new id at login, as a careful application does
    request.app[SESSIONS][new_sid] = LegacySession(user=username)
    response = web.Response(status=302, headers={"Location": "/"})
    response.set_cookie(COOKIE, new_sid, httponly=True, samesite="Lax", path="/")
    return response


async def home(request: web.Request) -> web.Response:
    _, session = _session(request)
    if session is None or not session.user:
        raise web.HTTPFound("/login")
    user = html.escape(session.user)
    return _page(
        "Invoices",
        f"""<h1>Welcome, {user}</h1><p id="who">Signed in to Legacy Billing as {user}.</p>
<ul><li>Invoice 1001: 120.00</li><li>Invoice 1002: 75.50</li></ul>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{session.csrf}">
<button type="submit">Sign out</button></form>""",
    )


async def logout_page(request: web.Request) -> web.Response:
    """ "Are you sure?": a GET never signs anyone out."""
    _, session = _session(request)
    if session is None or not session.user:
        raise web.HTTPFound("/login")
    return _page(
        "Sign out",
        f"""<h1>Sign out of Legacy Billing?</h1>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{session.csrf}">
<button type="submit">Sign out</button></form>""",
    )


async def whoami(request: web.Request) -> web.Response:
    """Who this session signs in, for the gateway's `whoami` (401 for nobody)."""
    _, session = _session(request)
    if session is None or not session.user:
        return web.json_response({"user": None}, status=401)
    return web.json_response({"user": session.user})


async def logout(request: web.Request) -> web.Response:
    sid, session = _session(request)
    form = await request.post()
    if session is None or form.get("csrf") != session.csrf:
        return _page("Sign out", "<p>Your form expired. <a href='/'>Back</a>.</p>", 400)
    request.app[SESSIONS].pop(sid or "", None)
    response = web.Response(status=302, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    _, session = _session(request)
    if session is None or not session.user:
        raise web.HTTPForbidden()
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(f"{session.user}: {message.data}")
    return ws


async def css(request: web.Request) -> web.Response:
    return web.Response(text=_CSS, content_type="text/css")


def create_legacy_app(accounts: dict[str, str]) -> web.Application:
    app = web.Application()
    app[SESSIONS] = {}
    app[ACCOUNTS] = {name.lower(): password for name, password in accounts.items()}
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_get("/", home)
    app.router.add_get("/logout", logout_page)
    app.router.add_post("/logout", logout)
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/static/legacy.css", css)
    return app
