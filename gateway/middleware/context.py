"""First stop of every request: client address, header hygiene, application and path."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.audit import bind_request, unbind_request
from gateway.clientip import client_ip, is_trusted, parse_ip
from gateway.context import RequestContext
from gateway.errors import BadRequest, MisdirectedRequest
from gateway.keys import CONTEXT, RUNTIME
from gateway.paths import BadPath, normalise_path
from gateway.proxy.headers import canonical, clean_request_headers
from gateway.runtime import mode_of
from gateway.settings import Settings

# Answered whatever the Host: load balancers probe these by address.
UNROUTED = ("/.gateway/healthz", "/.gateway/readyz", "/.gateway/metrics")
STATIC = "/.gateway/static/"
# Forward-auth endpoints: the front proxy names the application in X-Forwarded-Host, and their
# handler (gateway/handlers/forward_auth.py) builds the context itself from what it says.
FORWARD_AUTH = ("/.gateway/verify", "/.gateway/auth-request")


def served_securely(settings: Settings, tls: bool, forwarded_proto: str) -> bool:
    """Whether the browser talks to us over TLS: cookie_secure, else the socket or the trusted
    proxy's X-Forwarded-Proto (pass "" when the peer is not trusted)."""
    return {"always": True, "never": False}.get(
        settings.cookie_secure, tls or forwarded_proto.lower() == "https"
    )


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bind_request(request)  # audit lines carry this request's user, ip and id
    try:
        return await _with_context(request, handler)
    finally:
        unbind_request(token)


async def _with_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in UNROUTED or request.path in FORWARD_AUTH or request.path.startswith(STATIC):
        return await handler(request)
    runtime = request.app[RUNTIME]
    settings = runtime.settings
    application = runtime.router.route(request.headers.get("Host"))
    if application is None:
        raise MisdirectedRequest(
            "No application is served at this address.",
            "Check the address you typed.",
        )
    raw_path = request.raw_path.split("?", 1)[0].split("#", 1)[0]
    try:
        path = normalise_path(raw_path)
    except BadPath as exc:
        raise BadRequest(f"The address of this request is malformed: {exc}.") from exc
    peer = parse_ip(request.remote)
    trusted = settings.trusted_proxies
    peer_trusted = peer is not None and is_trusted(peer, trusted)
    forwarded_proto = request.headers.get("X-Forwarded-Proto", "") if peer_trusted else ""
    secure = served_securely(settings, request.secure, forwarded_proto)
    extra: frozenset[str] = frozenset()
    header_user: str | None = None
    if application.header is not None:
        extra = frozenset({canonical(application.header.user_header)})
        if peer_trusted:
            header_user = (request.headers.get(application.header.user_header) or "").strip()
    request[CONTEXT] = RequestContext(
        application=application,
        mode=mode_of(application),
        client_ip=client_ip(request.remote, request.headers.getall("X-Forwarded-For", []), trusted),
        headers=clean_request_headers(request.headers, extra),
        path=path,
        query=request.rel_url.raw_query_string,
        secure=secure,
        host=request.headers.get("Host", ""),
        policy=runtime.policy.current,
        header_user=header_user or None,
    )
    return await handler(request)
