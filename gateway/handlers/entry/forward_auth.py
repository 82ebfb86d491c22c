"""Forward-auth mode: nginx `auth_request`, Traefik ForwardAuth and Caddy `forward_auth` ask the
gateway about a request they proxy themselves; the answer is allow, with the identity headers
the proxy copies to the application, or where to send the browser.

    /.gateway/verify        Traefik, Caddy: 200, or 303 to the sign-in pages
    /.gateway/auth-request  nginx auth_request (2xx/401/403 only): 200, or 401 with the sign-in
                            page in X-Gateway-Location, which nginx reads with auth_request_set
    /.gateway/continue      a gateway page reached through the proxy, so first-party: finishes
                            what needs a cookie set (header-mode login, trusted network,
                            deferral, the step-down of a step-up)

The original request is read from X-Forwarded-Method/-Proto/-Host/-Uri (Traefik, Caddy) or
X-Original-Method/-URI (nginx), believed only from `trusted_proxies`. Two headers that say
different things are a bad request, never a guess.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.clientip import client_ip, is_trusted, parse_ip
from gateway.context import RequestContext
from gateway.decision import Mode, Outcome
from gateway.errors import BadRequest, Forbidden, MisdirectedRequest, NotFound
from gateway.handlers.entry.proxy import (
    GATEWAY_PREFIX,
    REDIRECT_PAGES,
    SKIPS,
    header_session,
    outcome_for,
)
from gateway.handlers.entry.upstream_headers import cookie_header_for_upstream, identity_headers
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.cookies import load_session, session_cookie_line
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import to_the_challenge
from gateway.hosts import canonical_host
from gateway.i18n import N_, Explained, gettext
from gateway.keys import CONTEXT
from gateway.method_override import HEADERS as OVERRIDE_HEADERS
from gateway.method_override import names_an_override, overrides
from gateway.metrics import BYPASS
from gateway.middleware.context import normalised, served_securely
from gateway.paths import BadPath, encode_path, normalise_path
from gateway.policy.model import Access
from gateway.proxy.headers import IDENTITY, canonical, clean_request_headers
from gateway.redirects import safe_redirect
from gateway.routing import mode_of
from gateway.sessions import Session

log = logging.getLogger("gateway.forward_auth")

LOCATION_HEADER = "X-Gateway-Location"
_METHOD_HEADERS = ("X-Forwarded-Method", "X-Original-Method")
_URI_HEADERS = ("X-Forwarded-Uri", "X-Original-URI")
# nginx's auth cache (deploy/nginx/gateway.conf): the front proxy says it keeps verdicts, and the
# gateway says which allows it may keep, and how long (X-Accel-Expires, whole seconds). nginx
# keeps an answer stored at t until the end of second floor(t) + N, less than N + 1 seconds;
# the answer comes from a store read made for it, so an ended session, a reset or a new deny
# rule stops within RECHECK_AFTER, as with the gateway's own memory of verified sessions.
AUTH_CACHE_HEADER = "X-Gateway-Auth-Cache"
AUTH_CACHE_SECONDS = 1
# what the shipped cache key holds besides scheme, host, method, URI and address, and what the
# verdict may read: nginx 1.22 keys only the first of repeated header lines (but joins Cookie
# and X-Forwarded-For), so a request repeating one of these is never kept
_KEYED_ONCE = (*OVERRIDE_HEADERS, "Authorization")
_KEYED_SPELLINGS = frozenset(name.lower() for name in OVERRIDE_HEADERS)
# The key joins its fields with "|", and most of them are the client's to write: a "|" in one
# could stand for the end of it and the start of the next, so that two different requests
# shared one key (a URI ending where another's X-Forwarded-For began) and the second got the
# first's allow. Nothing with a "|" in what the key is made of is kept: without one, the key
# splits back into its fields one way only.
_KEYED = (
    *_KEYED_ONCE,
    *_METHOD_HEADERS,
    *_URI_HEADERS,
    "Host",
    "X-Forwarded-Host",
    "X-Forwarded-For",
    "Cookie",
)
KEY_SEPARATOR = "|"
# The Cookie header the application should get, under that very name so that Traefik's
# authResponseHeaders and Caddy's copy_headers replace the browser's with it as they are.
COOKIE_HEADER = "Cookie"
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_NOT_URI = re.compile(r"[^\x21-\x7e]")  # a space, a control or anything not ASCII
# The identity headers identity_headers() gives. Every allow carries all of them, empty when
# unknown, so a proxy that copies them replaces the client's own copies (Caddy 2.6 would
# otherwise send the literal "{http.reverse_proxy.header.Remote-User}"); nginx sends no header
# for an empty value.
IDENTITY_HEADERS = tuple(sorted(name.title() for name in IDENTITY if name.startswith("remote-")))


class BadOriginal(Explained):
    """The front proxy's description of the original request cannot be used: the reason is on
    the 400 page, which the proxy shows the browser as it is."""


@dataclass(frozen=True)
class Original:
    """The request the front proxy is asking about."""

    method: str
    host: str
    proto: str
    path: str  # normalised, as access rules see it
    query: str
    raw_path: str = ""  # as the front proxy will send it on to the application

    @property
    def canonical(self) -> bool:
        """Whether the application receives the very path the rules judge. The front proxy
        forwards the raw path, so `/admin/../public/x` or `/admin/%2e%2e/light` would be judged
        as one path and routed by the application as another."""
        return self.raw_path == encode_path(self.path)

    @property
    def return_path(self) -> str:
        """Where the browser goes back to after signing in (a POST's body is gone by then)."""
        if self.method not in ("GET", "HEAD"):
            return "/"
        return encode_path(self.path) + ("?" + self.query if self.query else "")


def _one(headers: CIMultiDict[str] | CIMultiDictProxy[str], names: tuple[str, ...]) -> str | None:
    """The one value these headers agree on; None when none is sent."""
    values = {value.strip() for name in names for value in headers.getall(name, [])}
    if len(values) > 1:
        if len(names) == 1:
            raise BadOriginal(N_("the %(name)s headers disagree"), name=names[0])
        first, second = names
        raise BadOriginal(N_("%(first)s and %(second)s disagree"), first=first, second=second)
    return values.pop() if values else None


def original_request(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> Original:
    """What the front proxy says about the original request, checked and normalised."""
    method = _one(headers, _METHOD_HEADERS)
    if method is None:
        raise BadOriginal(N_("it sent no X-Forwarded-Method or X-Original-Method"))
    if not _METHOD.fullmatch(method):
        raise BadOriginal(N_("the original method is not an HTTP method"))
    uri = _one(headers, _URI_HEADERS)
    if uri is None:
        raise BadOriginal(N_("it sent no X-Forwarded-Uri or X-Original-URI"))
    if not uri.startswith("/") or _NOT_URI.search(uri):
        raise BadOriginal(N_("the original URI is not a path with an optional query"))
    raw_path, _, query = uri.split("#", 1)[0].partition("?")
    try:
        path = normalised(raw_path)  # remembered: the same paths come again and again
    except BadPath as exc:
        raise BadOriginal(N_("the original path is malformed: %(why)s"), why=exc) from exc
    host = canonical_host(_one(headers, ("X-Forwarded-Host",)) or _one(headers, ("Host",)) or "")
    if not host:
        raise BadOriginal(N_("the original host is missing or is not one host name"))
    proto = (_one(headers, ("X-Forwarded-Proto",)) or "http").lower()
    if proto not in ("http", "https"):
        raise BadOriginal(N_("X-Forwarded-Proto is neither http nor https"))
    return Original(method.upper(), host, proto, path, query, raw_path)


@dataclass(frozen=True)
class Answer:
    """Allow (`location` None, with `identity` headers) or send the browser to `location`."""

    location: str | None = None
    identity: dict[str, str] = field(default_factory=dict)
    keep: bool = False  # an allow the front proxy's auth cache may keep for AUTH_CACHE_SECONDS


async def verify(request: web.Request) -> web.StreamResponse:
    """Traefik ForwardAuth, Caddy forward_auth: a non-2xx answer goes to the browser as it is."""
    answer = await _judge(request)
    if answer.location is not None:
        return see_other(answer.location)
    return _allow(request, answer)


async def auth_request(request: web.Request) -> web.StreamResponse:
    """nginx auth_request: only 2xx, 401 and 403 are understood; 401 carries the next page."""
    answer = await _judge(request)
    if answer.location is not None:
        return web.Response(
            status=401,
            text=gettext("Sign-in needed.") + "\n",
            headers={LOCATION_HEADER: answer.location, "Cache-Control": "no-store"},
        )
    return _allow(request, answer)


def _allow(request: web.Request, answer: Answer) -> web.Response:
    """200 with the identity headers and the Cookie header for the front proxy to send on: the
    browser's cookies without the gateway's own (always present, maybe empty, like the rest)."""
    headers: dict[str, str] = {}
    if answer.keep:  # before Cache-Control: nginx 1.22 reads the two in order, and a no-store
        headers["X-Accel-Expires"] = str(AUTH_CACHE_SECONDS)  # read first keeps nothing
    headers |= {name: answer.identity.get(name, "") for name in IDENTITY_HEADERS}
    headers[COOKIE_HEADER] = cookie_header_for_upstream(request)
    headers["Cache-Control"] = "no-store"  # for anything but an auth cache that asked
    return web.Response(status=200, headers=headers)


def _cache_asks(request: web.Request) -> bool:
    """Whether the front proxy keeps verdicts (its auth cache) and this request's may be kept:
    not when a header the cache key holds once comes more than once, nor when what the key is
    made of holds its separator."""
    headers = request.headers
    if headers.get(AUTH_CACHE_HEADER) != "1":
        return False
    if any(len(headers.getall(name, ())) > 1 for name in _KEYED_ONCE):
        return False
    if any(names_an_override(name) and name.lower() not in _KEYED_SPELLINGS for name in headers):
        return False  # X_HTTP_Method_Override, say: what PHP reads, the key does not hold
    return not any(KEY_SEPARATOR in value for name in _KEYED for value in headers.getall(name, ()))


async def _judge(request: web.Request) -> Answer:
    rt = runtime(request)
    settings = rt.settings
    peer = parse_ip(request.remote)
    if peer is None or not is_trusted(peer, settings.trusted_proxies):
        log.warning("forward-auth request from %s, which is not a trusted proxy", request.remote)
        raise Forbidden(
            N_("This address answers only the proxy in front of the gateway."),
            N_("Add the proxy's address to trusted_proxies in the gateway's settings."),
        )
    try:
        original = original_request(request.headers)
    except BadOriginal as exc:
        raise BadRequest(
            gettext(
                "The proxy in front did not describe the request clearly: %(why)s.", why=exc.words()
            )
        ) from exc
    application = rt.router.route(original.host)
    if application is None:
        raise MisdirectedRequest(N_("No application is served at this address."))
    if not application.forward_auth:
        raise Forbidden(
            gettext(
                'The application "%(name)s" is not in forward_auth mode.', name=application.name
            ),
            N_(
                "Set mode: forward_auth for it in the gateway's settings, or proxy it through the "
                "gateway."
            ),
        )
    if not original.canonical:
        # Judged only in the form the rules see: a browser asked once more for that form.
        if original.method not in ("GET", "HEAD"):
            raise BadRequest(
                N_(
                    "The address is not in its plain form (dot segments, doubled slashes or "
                    "needless escapes), so it was not passed on."
                )
            )
        log.warning("forward-auth: non-canonical path %r sent to its plain form", original.raw_path)
        canonical_path = encode_path(original.path)
        return Answer(canonical_path + ("?" + original.query if original.query else ""))
    if original.path == GATEWAY_PREFIX or original.path.startswith(GATEWAY_PREFIX + "/"):
        raise NotFound(
            N_("The gateway's own pages are not an application's."),
            N_(
                "Send /.gateway/ to the gateway without asking it to verify (see the example "
                "config)."
            ),
        )
    extra: frozenset[str] = frozenset()
    header_user: str | None = None
    if application.header is not None:
        extra = frozenset({canonical(application.header.user_header)})
        header_user = (request.headers.get(application.header.user_header) or "").strip() or None
    ctx = RequestContext(
        application=application,
        mode=mode_of(application),
        client_ip=client_ip(
            request.remote, request.headers.getall("X-Forwarded-For", []), settings.trusted_proxies
        ),
        headers=clean_request_headers(request.headers, extra),
        path=original.path,
        query=original.query,
        secure=served_securely(settings, request.secure, original.proto),
        host=original.host,
        policy=rt.policy.current,
        header_user=header_user,
    )
    request[CONTEXT] = ctx
    methods = overrides(request.headers, original.query)
    access, _rule = ctx.policy.access_for(application.name, original.method, original.path, methods)
    if ctx.policy.body_may_tighten(application.name, original.method, original.path, access, _rule):
        # the body (and a `_method` in it) never reaches the gateway: any method it may name
        methods += ctx.policy.any_method(application.name)
        access, _rule = ctx.policy.access_for(
            application.name, original.method, original.path, methods
        )
    metrics = rt.metrics
    if access is Access.DENY:
        metrics.decided(application.name, Outcome.DENY)
        raise Forbidden(N_("The site's policy does not allow this address."))
    # an auth cache keeps an allow for a while: it comes from a store read made for it, never
    # from the memory of recent sessions, so the two delays never add up
    keep = _cache_asks(request) and ctx.mode is not Mode.HEADER
    if access is Access.BYPASS:  # no session lookup: works with the store down
        metrics.decided(application.name, BYPASS)
        return Answer(keep=keep)
    session = await load_session(request, recent=not keep)
    if ctx.mode is Mode.HEADER:
        if header_user is None:
            session = None  # the single sign-on in front names nobody: unidentified
        elif session is None or session.user != header_user.lower():
            # A new name is a new login, and its session cookie is set on a gateway page.
            return Answer(gateway_url("continue", original.return_path))
    outcome = await outcome_for(request, access, session, _rule)
    metrics.decided(application.name, outcome)  # in gateway_requests_total like proxied ones
    if outcome is Outcome.STEP_UP:
        # The session steps down on /.gateway/continue, where its new cookie can be set.
        if original.method not in ("GET", "HEAD"):
            raise Forbidden(
                N_("This needs you to confirm it is you again; what you sent was not passed on."),
                N_(
                    "Reload the page (you will be asked for your second factor), then send it "
                    "again."
                ),
            )
        return Answer(gateway_url("continue", original.return_path))
    if outcome is Outcome.FORWARD:
        return Answer(identity=identity_headers(session), keep=keep)
    if outcome is Outcome.FORWARD_ANONYMOUS:
        return Answer(keep=keep)
    if outcome in SKIPS:
        return Answer(gateway_url("continue", original.return_path))
    if outcome in REDIRECT_PAGES:
        return Answer(gateway_url(REDIRECT_PAGES[outcome], original.return_path))
    if outcome is Outcome.UNIDENTIFIED:
        raise Forbidden(
            N_("The single sign-on in front of this gateway did not say who you are."),
            N_("Sign in through your organisation's sign-in page and try again."),
        )
    raise Forbidden(N_("The site's policy does not allow this request."))


async def continue_get(request: web.Request) -> web.StreamResponse:
    """Reached through the front proxy on the application's host: do what the verify answer
    could not (it cannot set cookies), then send the browser on to `rd` or the next page."""
    ctx = context(request)
    if not ctx.application.forward_auth:
        raise NotFound(N_("There is no gateway page at this address."))
    target = safe_redirect(request.query.get("rd"))
    try:
        path = normalise_path(target.split("?", 1)[0])
    except BadPath:
        target, path = "/", "/"
    access, _rule = ctx.policy.access_for(ctx.application.name, "GET", path)
    if access is Access.DENY:
        raise Forbidden(N_("The site's policy does not allow this address."))
    if access is Access.BYPASS:
        return see_other(target)
    session = await load_session(request)
    fresh: Session | None = None
    if ctx.mode is Mode.HEADER:
        session, fresh = await header_session(request, session)
    outcome = await outcome_for(request, access, session, _rule)
    if outcome in SKIPS and session is not None:
        return await complete(request, session, target, via=SKIPS[outcome])
    if outcome is Outcome.STEP_UP and session is not None:
        return await to_the_challenge(request, session, target)
    if outcome in (Outcome.FORWARD, Outcome.FORWARD_ANONYMOUS):
        response = see_other(target)
    elif outcome in REDIRECT_PAGES:
        response = see_other(gateway_url(REDIRECT_PAGES[outcome], target))
    elif outcome is Outcome.UNIDENTIFIED:
        raise Forbidden(
            N_("The single sign-on in front of this gateway did not say who you are."),
            N_("Sign in through your organisation's sign-in page and try again."),
        )
    else:
        raise Forbidden(N_("The site's policy does not allow this request."))
    if fresh is not None:
        response.headers.add("Set-Cookie", session_cookie_line(request, fresh))
    return response
