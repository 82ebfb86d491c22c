"""First stop of every request: client address, header hygiene, application and path; and the
last: whatever escapes a handler becomes a page (gateway.middleware.errors)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import i18n
from gateway.audit import bind_request, unbind_request
from gateway.clientip import client_ip_of, is_trusted, parse_ip
from gateway.context import RequestContext
from gateway.errors import BadRequest, MisdirectedRequest
from gateway.handlers.shared.request import cookie_name, cookie_value
from gateway.hosts import canonical_host
from gateway.i18n import N_, _
from gateway.keys import CONTEXT, RUNTIME
from gateway.memo import remembered
from gateway.middleware.errors import error_response
from gateway.paths import BadPath, normalise_path
from gateway.proxy.headers import canonical, clean_request_headers
from gateway.redirects import is_safe_redirect, safe_redirect
from gateway.routing import mode_of
from gateway.settings import Application, Settings

# Answered whatever the Host: load balancers probe these by address.
UNROUTED = frozenset({"/.gateway/healthz", "/.gateway/readyz", "/.gateway/metrics"})
STATIC = "/.gateway/static/"
# Forward-auth endpoints: the front proxy names the application in X-Forwarded-Host, and their
# handler (gateway/handlers/entry/forward_auth.py) builds the context itself from what it says.
FORWARD_AUTH = frozenset({"/.gateway/verify", "/.gateway/auth-request"})


def served_securely(settings: Settings, tls: bool, forwarded_proto: str) -> bool:
    """Whether the browser talks to us over TLS: cookie_secure, else the socket or the trusted
    proxy's X-Forwarded-Proto (pass "" when the peer is not trusted)."""
    if settings.cookie_secure == "always":
        return True
    if settings.cookie_secure == "never":
        return False
    return tls or forwarded_proto.lower() == "https"


# the same paths come again and again; a malformed one raises, and is not remembered
normalised = remembered(entries=4096, longest=512)(normalise_path)


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bind_request(lambda: request.get(CONTEXT))  # audit lines carry its user, ip and id
    choice = _language_of(request)  # read when a page, message or code first needs it
    language = i18n.choose(choice)  # pages, messages and codes sent speak it
    try:
        return await _with_context(request, handler)
    except web.HTTPException:
        raise
    except Exception as exc:  # every failure is a page, never a traceback
        return error_response(request, exc)
    finally:
        i18n.unchoose(language)
        unbind_request(token)
        # aiohttp keeps the last request of a keep-alive connection until the next one comes:
        # what the gateway hung on it goes now, so an idle connection holds as little as it can
        request.pop(CONTEXT, None)


async def _with_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in UNROUTED or path in FORWARD_AUTH or path.startswith(STATIC):
        return await handler(request)
    runtime = request.app[RUNTIME]
    settings = runtime.settings
    headers = request.headers
    sent = headers.get("Host", "")
    host = canonical_host(sent) if sent.strip(" \t") else ""  # none (HTTP/1.0): the `*` one
    if host is None:
        raise BadRequest(N_("The address of this site (its Host) is not one host name."))
    application = runtime.router.route(host)
    if application is None:
        raise MisdirectedRequest(
            N_("No application is served at this address."), N_("Check the address you typed.")
        )
    # the request target as sent, split as the HTTP parser does (a "#" ends it, the first "?"
    # starts the query): yarl's relative URL gives the same, at a cost on every request
    raw_path, _sep, query = request.raw_path.partition("#")[0].partition("?")
    try:
        normal = normalised(raw_path)
    except BadPath as exc:
        raise BadRequest(
            _("The address of this request is malformed: %(why)s.", why=exc.words())
        ) from exc
    peer = parse_ip(request.remote)
    trusted = settings.trusted_proxies
    peer_trusted = bool(trusted) and peer is not None and is_trusted(peer, trusted)
    forwarded_proto = headers.get("X-Forwarded-Proto", "") if peer_trusted else ""
    header_user: str | None = None
    if application.header is not None and peer_trusted:
        header_user = (headers.get(application.header.user_header) or "").strip()
    request[CONTEXT] = RequestContext(
        application=application,
        mode=mode_of(application),
        client_ip=(
            client_ip_of(peer, headers.getall("X-Forwarded-For", []), trusted)
            if peer_trusted
            else peer
        ),
        headers=clean_request_headers(headers, _extra_identity(application)),
        path=normal,
        query=query,
        secure=served_securely(settings, request.secure, forwarded_proto),
        host=host,
        policy=runtime.policy.current,
        header_user=header_user or None,
    )
    return await handler(request)


def _language_of(request: web.Request) -> i18n.Choice:
    """The switcher's cookie, else Accept-Language, else (once known) the company's language."""

    def company_language() -> str | None:
        ctx = request.get(CONTEXT)
        company = ctx.known_company() if ctx is not None else None
        return company.language if company is not None else None

    def person() -> str | None:
        return i18n.from_cookie(_language_cookie(request)) or i18n.from_header(
            request.headers.get("Accept-Language")
        )

    return i18n.Choice(person, company_language, where=lambda: switcher_return(request))


def _language_cookie(request: web.Request) -> str | None:
    """The switcher's cookie under the name it is set with: over TLS only `__Host-gateway_lang`
    (a plain one may come from a sibling host). A request refused before its context is known
    (a malformed address) takes the `__Host-` one, which only this host can have set, first."""
    ctx = request.get(CONTEXT)
    if ctx is not None:
        return cookie_value(ctx, cookie_name(ctx, i18n.COOKIE))
    cookies = request.cookies
    return cookies.get(f"__Host-{i18n.COOKIE}") or cookies.get(i18n.COOKIE)


def switcher_return(request: web.Request) -> str:
    """Where the language switcher of this page comes back to: the page itself when a GET shows
    it, else the page a form's `rd` goes on to (a POST's own address may have no page)."""
    if request.method not in ("GET", "HEAD"):
        return safe_redirect(request.query.get("rd"))
    rd = request.query.get("rd")
    if rd is not None and not is_safe_redirect(rd):  # not even repeated in the switcher's link
        kept = [(key, value) for key, value in request.query.items() if key != "rd"]
        return safe_redirect(request.path + (f"?{urlencode(kept)}" if kept else ""))
    return safe_redirect(request.path_qs)


def _extra_identity(application: Application) -> frozenset[str]:
    """Header mode: the single sign-on's user header is an identity header too."""
    if application.header is None:
        return frozenset()
    return frozenset({canonical(application.header.user_header)})
