"""Sign-in steps over HTTP for the scale tests: one browser (one cookie jar), any gateway.

Cookies are kept per host, not per port, so one browser talking to two gateways on 127.0.0.1 is
a browser behind a load balancer that sends its requests now to one instance, now to another.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from tests.support import code_for, csrf_from_page, secret_from_page

LEGACY_CSRF = re.compile(r'name="csrf" value="(\w+)"')
CODE = re.compile(r"\b(\d{6})\b")


@asynccontextmanager
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def cookie(session: aiohttp.ClientSession, name: str) -> str | None:
    for morsel in session.cookie_jar:
        if morsel.key == name:
            return morsel.value
    return None


async def app_logout(session: aiohttp.ClientSession, base: str) -> None:
    """The legacy application's sign-out: its "are you sure?" page, then its POST."""
    async with session.get(f"{base}/logout") as page:
        found = LEGACY_CSRF.search(await page.text())
    assert found, "the application's sign-out form"
    async with session.post(f"{base}/logout", data={"csrf": found.group(1)}, allow_redirects=False):
        pass


async def app_login(session: aiohttp.ClientSession, base: str, user: str, password: str) -> str:
    """The legacy application's own login form, through the gateway at `base`; returns where
    the gateway sends the browser next (its enrolment or challenge page)."""
    async with session.get(f"{base}/login") as page:
        found = LEGACY_CSRF.search(await page.text())
    assert found, "the application's login form"
    form = {"csrf": found.group(1), "username": user, "password": password}
    async with session.post(f"{base}/login", data=form, allow_redirects=False) as answer:
        assert answer.status in (302, 303), answer.status
        return answer.headers["Location"]


async def form_page(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as page:
        assert page.status == 200, page.status
        return await page.text()


async def post(
    session: aiohttp.ClientSession, url: str, token: str, **fields: str
) -> tuple[int, str, str]:
    """(status, Location, body) of a form POST carrying the page's CSRF token."""
    data = {"csrf_token": token, **fields}
    async with session.post(url, data=data, allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Location", ""), await answer.text()


async def enrol_totp(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """Enrol an authenticator app on the page at `url`; returns (secret, the code used)."""
    html = await form_page(session, url)
    secret = secret_from_page(html)
    used = code_for(secret)
    status, _, _ = await post(session, url, csrf_from_page(html), code=used)
    assert status == 303, status
    return secret, used


def last_code(outbox: Path, to: str) -> str:
    """The code in the last message the outbox sender wrote for `to`."""
    messages = [json.loads(line) for line in outbox.read_text().splitlines()]
    texts = [str(m["text"]) for m in messages if m["to"] == to]
    assert texts, f"no message to {to} in the outbox"
    found = CODE.search(texts[-1])
    assert found, texts[-1]
    return found.group(1)


def count_messages(outbox: Path, to: str) -> int:
    if not outbox.exists():
        return 0
    return sum(1 for line in outbox.read_text().splitlines() if json.loads(line)["to"] == to)


def outbox_senders(outbox: Path) -> dict[str, Any]:
    return {"email": {"kind": "outbox", "path": str(outbox)}}


EMAIL_ENROL = "/.gateway/enrol?method=email&rd=%2F"


async def held_posts(
    session: aiohttp.ClientSession, bases: list[str], path: str, fields: dict[str, str]
) -> list[tuple[int, str, str]]:
    """The same form POSTed to every base at once, with this browser's cookies: each request is
    sent but for the last byte of its body, then all last bytes go together, so the gateways
    handle them side by side (the race a double click on two instances makes)."""
    body = urlencode(fields).encode()
    streams = []
    for base in bases:
        url = URL(base)
        cookies = "; ".join(
            f"{k}={m.value}" for k, m in session.cookie_jar.filter_cookies(url).items()
        )
        reader, writer = await asyncio.open_connection(url.host, url.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nCookie: {cookies}\r\n\r\n"
        )
        writer.write(head.encode() + body[:-1])
        await writer.drain()
        streams.append((reader, writer))
    for _, writer in streams:
        writer.write(body[-1:])
    answers = []
    for reader, writer in streams:
        await writer.drain()
        raw = (await reader.read()).decode("utf-8", "replace")
        writer.close()
        await writer.wait_closed()
        head, _, text = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        answers.append((int(lines[0].split()[1]), headers.get("Location", ""), text))
    return answers


EMAIL_CHALLENGE = "/.gateway/challenge?method=email&rd=%2F"


async def email_code(session: aiohttp.ClientSession, url: str, to: str, outbox: Path) -> str:
    """Ask for an email code on the page at `url` (again while the policy's short pause
    between sends lasts); returns the code the outbox received."""
    html = await form_page(session, url)
    for _ in range(100):
        status, _, _ = await post(session, url, csrf_from_page(html), action="send")
        if status != 429:
            break
        await asyncio.sleep(0.05)
    assert status == 303, status
    return last_code(outbox, to)


async def race_email_code(
    session: aiohttp.ClientSession,
    bases: list[str],
    user: tuple[str, str],
    outbox: Path,
) -> list[tuple[int, str, str]]:
    """Enrol the user's email (at the first base), sign in again, ask for a code at the first
    base, then submit the right code to every base at once; returns those answers."""
    first = bases[0]
    await app_login(session, first, *user)
    code = await email_code(session, first + EMAIL_ENROL, user[0], outbox)
    status, _, _ = await post(
        session,
        first + EMAIL_ENROL,
        csrf_from_page(await form_page(session, first + EMAIL_ENROL)),
        code=code,
    )
    assert status == 303, status
    await app_logout(session, first)
    await app_login(session, first, *user)
    code = await email_code(session, first + EMAIL_CHALLENGE, user[0], outbox)
    token = csrf_from_page(await form_page(session, bases[-1] + EMAIL_CHALLENGE))
    return await held_posts(session, bases, EMAIL_CHALLENGE, {"csrf_token": token, "code": code})


def accepted(answers: list[tuple[int, str, str]]) -> int:
    """How many answers finished the sign-in (sent on to the application's page)."""
    return sum(1 for status, location, _ in answers if status == 303 and location == "/")
