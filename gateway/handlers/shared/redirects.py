"""Where a gateway page sends the browser next: a 303, a /.gateway/ page, the `rd` to return to."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from gateway.redirects import safe_redirect


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def gateway_url(page: str, rd: str | None) -> str:
    return f"/.gateway/{page}" + (f"?{urlencode({'rd': rd})}" if rd else "")


def method_url(page: str, method: str, rd: str) -> str:
    """A sign-in page (challenge or enrol) for one second-factor method."""
    return f"/.gateway/{page}?{urlencode({'method': method, 'rd': rd})}"


def rd(request: web.Request) -> str:
    """Where this page returns to: its `rd` query parameter, when it is a safe redirect."""
    return safe_redirect(request.query.get("rd"))
