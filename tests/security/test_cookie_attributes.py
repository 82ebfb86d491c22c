"""Every cookie the gateway sets, through a whole sign-in, enrolment and sign-out, over TLS (as
told by a trusted proxy) and over plain HTTP: HttpOnly, SameSite=Lax, Path=/, no Domain;
Secure and `__Host-` over TLS, and no Secure where the browser would drop it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.clock import FixedClock
from tests.security.conftest import PASSWORD, POLICIES, USER
from tests.support import code_for, csrf_from_page, gateway_now, portal_app, secret_from_page

OWN = ("gateway_session", "gateway_csrf", "gateway_trust", "gateway_browser")


def attributes(line: str) -> tuple[str, dict[str, str]]:
    first, *rest = line.split(";")
    attrs = {}
    for part in rest:
        key, _, value = part.strip().partition("=")
        attrs[key.lower()] = value
    return first.split("=", 1)[0].strip(), attrs


async def walk(client: Any, headers: dict[str, str]) -> list[str]:
    """Sign in, enrol, visit the app, sign out; every Set-Cookie line the gateway sent."""
    lines: list[str] = []
    jar: dict[str, str] = {}  # kept by hand: the client's jar sends no Secure cookie over http

    async def go(method: str, target: str, **kwargs: Any) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        answer = await client.request(
            method,
            target,
            headers={**headers, "Cookie": cookie},
            allow_redirects=False,
            **kwargs,
        )
        client.session.cookie_jar.clear()
        for line in answer.headers.getall("Set-Cookie", []):
            lines.append(line)
            name, attrs = attributes(line)
            if attrs.get("max-age") == "0":
                jar.pop(name, None)
            else:
                jar[name] = line.split(";", 1)[0].split("=", 1)[1]
        return answer

    page = await go("GET", "/.gateway/login")
    token = csrf_from_page(await page.text())
    login = await go(
        "POST",
        "/.gateway/login",
        data={"csrf_token": token, "username": USER, "password": PASSWORD},
    )
    assert login.status == 303, await login.text()
    html = await (await go("GET", "/.gateway/enrol")).text()
    done = await go(
        "POST",
        "/.gateway/enrol",
        data={
            "csrf_token": csrf_from_page(html),
            "code": code_for(secret_from_page(html), gateway_now(client)),
        },
    )
    assert done.status == 303
    assert (await go("GET", "/reports")).status == 200
    logout = await go("GET", "/.gateway/logout")
    out = await go(
        "POST", "/.gateway/logout", data={"csrf_token": csrf_from_page(await logout.text())}
    )
    assert out.status == 303
    return lines


@pytest.mark.parametrize("tls", [True, False])
async def test_every_gateway_cookie_has_safe_attributes(
    make_gateway: Any, upstream_url: str, users_file: Path, clock: FixedClock, tls: bool
) -> None:
    client = await make_gateway(
        {"app": portal_app(upstream_url, users_file)},
        POLICIES,
        trusted_proxies=["127.0.0.1/32"],
    )
    headers = {"X-Forwarded-Proto": "https" if tls else "http", "X-Forwarded-For": "198.51.100.4"}
    lines = await walk(client, headers)
    names = set()
    problems = []
    for line in lines:
        name, attrs = attributes(line)
        base = name.removeprefix("__Host-")
        if base not in OWN:
            problems.append(f"unexpected cookie {name}")
            continue
        names.add(base)
        deleting = attrs.get("max-age") == "0"
        if "httponly" not in attrs:
            problems.append(f"{name}: no HttpOnly")
        if not deleting and attrs.get("samesite", "").lower() not in ("lax", "strict"):
            problems.append(f"{name}: SameSite is {attrs.get('samesite')!r}")
        if attrs.get("path") != "/":
            problems.append(f"{name}: Path is {attrs.get('path')!r}")
        if "domain" in attrs:
            problems.append(f"{name}: has a Domain")
        if tls and (not name.startswith("__Host-") or "secure" not in attrs):
            problems.append(f"{name}: over TLS without __Host- and Secure")
        if not tls and ("secure" in attrs or name.startswith("__Host-")):
            problems.append(f"{name}: Secure over plain HTTP (the browser drops it)")
    assert not problems, "\n".join(problems + lines)
    assert {"gateway_session", "gateway_csrf"} <= names
