"""A verified session on a path that wants a more recent second factor (an access rule's
`reauthenticate_after`), and a stepped-down session's requests while its challenge is under
way: to the challenge and back (GET, HEAD), or refused with nothing passed on (the rest: their
bodies cannot be sent again after the challenge)."""

from __future__ import annotations

import copy
import logging
from urllib.parse import urlsplit

from aiohttp import web

from gateway.handlers.entry import intercept_checks as checks
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import to_the_challenge
from gateway.i18n import N_
from gateway.proxy.websocket import is_websocket
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session

log = logging.getLogger("gateway.proxy")


def held_over_a_step_down(request: web.Request, session: Session | None) -> bool:
    """The application cookies refused are this very session's, bound when it was verified, and
    it has stepped down since (a step-up or "Confirm it is you"; the challenge is under way): as
    they would pass were it verified still. They wait for its second factor, not cleared."""
    if session is None or session.level is not Level.FIRST_FACTOR or not session.bound:
        return False
    as_verified = copy.copy(session)
    as_verified.level = Level.VERIFIED
    return not checks.unbound_app_cookies(request, as_verified)


def wait_for_the_second_factor(request: web.Request, back: str) -> web.StreamResponse:
    """A request of a stepped-down session with its application cookies: to the challenge (a GET
    or HEAD, then back), or refused (nothing passed on; the cookies stay)."""
    if request.method not in ("GET", "HEAD") or is_websocket(request):
        return step_up_refused(request)
    return see_other(gateway_url("challenge", back))


async def step_up(request: web.Request, session: Session, back: str) -> web.StreamResponse:
    """A verified session on a path whose rule wants a more recent second factor: a GET or HEAD
    steps down (under a new id, the application's cookies still bound to it) and goes to the
    challenge, then `back`; anything else is refused, since its body cannot be sent again after
    the challenge, and the session stays as it is."""
    if request.method not in ("GET", "HEAD") or is_websocket(request):
        return step_up_refused(request)
    log.info("step-up: %s asked again for a second factor on %s", session.user, request.path)
    # a copy: the remembered verified session (load_session recent=True) may be in use by this
    # browser's other requests, which must not see it change under them
    return await to_the_challenge(request, copy.deepcopy(session), back)


def step_up_refused(request: web.Request) -> web.Response:
    """401: what was sent needs a more recent second factor, and is not passed on."""
    ctx = context(request)
    back = "/"
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc == ctx.host and referer.path.startswith("/"):
        back = safe_redirect(referer.path + (f"?{referer.query}" if referer.query else ""))
    return runtime(request).pages.render(
        "error.html",
        company=ctx.known_company(),
        status=401,
        title=N_("Please confirm it is you"),
        message=N_("This needs you to confirm it is you again; what you sent was not passed on."),
        next_step=N_(
            "Confirm it is you (you will be asked for your second factor), or reload the "
            "page, then send it again."
        ),
        link=gateway_url("reauth", back),
        link_text=N_("Confirm it is you"),
    )
