"""CSRF on every POST: the state-changing routes are read from the router that create_app()
builds, so a route added later without the check fails here. Each is attacked with the session
of a company admin who has just presented a second factor (so nothing but the CSRF check stands
in the way): no token, a made-up token, and a token minted for another browser's CSRF cookie."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from gateway.app import build_runtime, create_app
from gateway.policy import load_policy_dir
from gateway.settings import settings_from_dict
from tests.security.conftest import ACCESS, PASSWORD, USER, Client
from tests.support import (
    DEFAULT_POLICY,
    code_for,
    csrf_from_page,
    portal_app,
    portal_login,
    secret_from_page,
    settings_dict,
)

ADMIN_POLICY = DEFAULT_POLICY + f"admins: [{USER}]\n"
POLICIES = {"example.yaml": ADMIN_POLICY, "applications.yaml": ACCESS}
CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
API = "/.gateway/admin/api/"
FORM_REFUSAL = "This form has expired or did not come from this site."


def changing_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route that may change state, the proxy's catch-all
    (which forwards to the application) aside."""
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path") or ""
        if route.method in CHANGING or (route.method == "*" and template.startswith("/.gateway")):
            routes.append((route.method, template))
    return sorted(set(routes))


async def test_the_router_is_enumerated(
    tmp_path: Path, upstream_url: str, users_file: Path
) -> None:
    """The list below is the router's own: it holds the routes every page form posts to."""
    data = settings_dict(tmp_path, {"app": portal_app(upstream_url, users_file)}, POLICIES)
    settings = settings_from_dict(data, source=tmp_path / "gateway.yaml")
    policy = load_policy_dir(settings.policy_dir, known_apps=["app"])
    routes = changing_routes(create_app(build_runtime(settings, policy)))
    paths = {path for _method, path in routes}
    for expected in (
        "/.gateway/login",
        "/.gateway/challenge",
        "/.gateway/logout",
        "/.gateway/defer",
    ):
        assert expected in paths
    assert all(method != "*" for method, _ in routes), routes  # no gateway route takes any method


async def signed_in_admin(client: Client) -> None:
    login = await portal_login(client, USER, PASSWORD)
    assert login.status == 303
    html = await (await client.get("/.gateway/enrol")).text()
    done = await client.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    assert done.status == 303


async def test_every_post_needs_the_token(
    make_gateway: Any, upstream_url: str, users_file: Path
) -> None:
    client: Client = await make_gateway({"app": portal_app(upstream_url, users_file)}, POLICIES)
    await signed_in_admin(client)
    # A token valid for another browser's CSRF cookie (the attacker's own, say).
    async with ClientSession() as stranger:
        page = await stranger.get(client.make_url("/.gateway/login"))
        stranger_token = csrf_from_page(await page.text())
    routes = changing_routes(client.app)
    assert len(routes) >= 10, routes
    failures = []
    for method, template in routes:
        path = template.replace("{company}", "example").replace("{user}", USER)
        for token in (None, "0" * 64, stranger_token, "é" * 64):
            if template.startswith(API):
                headers = {"Content-Type": "application/json"}
                if token is not None:
                    headers["X-CSRF-Token"] = token
                answer = await client.request(
                    method, path, data=b"{}", headers=headers, allow_redirects=False
                )
                body = await answer.text()
                if answer.status != 403 or "csrf_failed" not in body:
                    failures.append(
                        f"{method} {path} token={token!r}: {answer.status} {body[:120]!r}"
                    )
            else:
                form = {"code": "123456", "username": USER, "password": PASSWORD}
                if token is not None:
                    form["csrf_token"] = token
                answer = await client.request(method, path, data=form, allow_redirects=False)
                body = await answer.text()
                if answer.status != 400 or FORM_REFUSAL not in body:
                    title = re.search(r"<h1>(.*?)</h1>", body)
                    failures.append(
                        f"{method} {path} token={token!r}: {answer.status} "
                        f"{title.group(1) if title else body[:120]!r}"
                    )
    assert not failures, "\n".join(failures)
