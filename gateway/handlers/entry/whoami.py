"""Asking the application who is signed in: its `whoami` page, server to server, with exactly
the cookies a login answer set (the browser never has them)."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway.cookies import build_cookie_header
from gateway.errors import UpstreamTimeout, UpstreamUnreachable
from gateway.handlers.shared.request import context, runtime
from gateway.identity.whoami import MAX_ANSWER, WhoamiUnreadable, decode_body, user_from_answer
from gateway.intercept_settings import Whoami
from gateway.proxy import http

log = logging.getLogger("gateway.login")


# The browser's own headers sent along: some applications tie a session to them (DokuWiki
# issues a new cookie when they change), and whoami must look like the browser's next request.
_BROWSER_HEADERS = ("User-Agent", "Accept-Language", "Accept-Encoding")


async def ask_whoami(
    request: web.Request, config: Whoami, jar: dict[str, str], token: str | None = None
) -> str | None:
    """The user the application says `jar` (or the bearer `token`) signs in, or None for
    nobody. Raises WhoamiUnreadable when it cannot be told (no answer, an error, an answer of
    another shape)."""
    ctx = context(request)
    rt = runtime(request)
    application = ctx.application
    headers: CIMultiDict[str] = CIMultiDict()
    headers["Host"] = ctx.host if application.preserve_host and ctx.host else ""
    if not headers["Host"]:
        del headers["Host"]
    headers["Accept"] = "application/json" if config.json else "text/html,*/*;q=0.8"
    headers["X-Forwarded-Proto"] = "https" if ctx.secure else "http"
    if ctx.host:
        headers["X-Forwarded-Host"] = ctx.host
    if ctx.client_ip is not None:
        headers["X-Forwarded-For"] = str(ctx.client_ip)
    headers["X-Request-Id"] = ctx.request_id
    for name in _BROWSER_HEADERS:
        if name in request.headers:
            headers[name] = request.headers[name]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if jar:
        headers["Cookie"] = build_cookie_header(list(jar.items()))
    path, _, query = config.path.partition("?")
    try:
        upstream = await http.open_upstream(
            rt.upstream,
            config.method,
            http.upstream_url(application.upstream, path, query),
            headers,
            None,
            http.timeouts(application.timeouts.connect, application.timeouts.read),
            rt.metrics.upstream(application.name),
        )
    except (UpstreamUnreachable, UpstreamTimeout) as exc:
        # whoami's failures go to the log and the audit, never to a page
        raise WhoamiUnreadable(f"whoami could not be asked: {exc}") from exc  # i18n: not for people
    try:
        body = bytearray()
        while chunk := await upstream.content.read(64 * 1024):
            body.extend(chunk)
            if len(body) > MAX_ANSWER:
                raise WhoamiUnreadable(
                    f"the whoami answer is longer than {MAX_ANSWER} bytes"  # i18n: not for people
                )
        decoded = decode_body(upstream.headers.get("Content-Encoding"), bytes(body))
        user = user_from_answer(config, upstream.status, upstream.headers, decoded)
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        raise WhoamiUnreadable(
            f"the whoami answer did not arrive: {exc}"  # i18n: not for people
        ) from exc
    finally:
        upstream.close()
    log.debug("whoami at %s says %s", config.path, user or "nobody")
    return user
