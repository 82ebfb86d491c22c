"""/.gateway/enrol and /.gateway/challenge: which method's page a request gets.

The method comes from the `method` query parameter, else the company's default among those the
user has (or may enrol), else the first of them in policy order. The other choices are offered
on every page as "another way".
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden, NotFound
from gateway.factors.passkey_records import WEBAUTHN
from gateway.handlers.shared.attempts import busy, refusal, start_again
from gateway.handlers.shared.completion import REMEMBER_TICKED
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import stale
from gateway.handlers.shared.methods import REGISTRY, enrolled_alone, offered
from gateway.handlers.shared.own_methods import ACCOUNT, PASSKEYS, own_default
from gateway.handlers.shared.pending import pending, pending_again, pending_post
from gateway.handlers.shared.redirects import gateway_url, method_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.handlers.signin import (  # importing a method's module registers its pages
    email_codes,  # noqa: F401
    passkeys,  # noqa: F401
    phone_codes,  # noqa: F401
    recovery,  # noqa: F401
    totp,  # noqa: F401
)
from gateway.i18n import N_
from gateway.keys import LOCKOUT, OTHER_WAYS
from gateway.metrics import DELAYED, LOCKED_OUT
from gateway.sessions import Level, Session
from gateway.signin import methods, remember, steps
from gateway.signin.attempts import answering, one_at_a_time, wait_for


async def _choose(
    request: web.Request, session: Session, page: str
) -> tuple[str, list[str]] | web.StreamResponse:
    """The method for this page, after listing the others for "another way". A verified session
    on the enrolment page is a signed-in user adding a backup method ("add")."""
    rt = runtime(request)
    assert session.user is not None
    company = company_for(request, session.user)
    enrolled = await rt.store.list_methods(session.user)
    if page == "enrol" and session.level is Level.VERIFIED:
        page = "add"
    own = await own_default(rt.store, session.user) if page == "challenge" else None
    choice = methods.choose(
        page, enrolled, company, offered(rt), enrolled_alone(), request.query.get("method"), own
    )
    if choice.go_to == "account":
        return see_other(ACCOUNT)
    if choice.go_to is not None:
        return see_other(gateway_url(choice.go_to, rd(request)))
    if choice.refused is not None or choice.method is None:
        raise _refusal(choice.refused or "none_available")
    request[OTHER_WAYS] = [
        {"name": name, "label": REGISTRY[name].label, "url": _way_url(page, name, request)}
        for name in choice.others
    ]
    return choice.method, [choice.method, *choice.others]


def _way_url(page: str, method: str, request: web.Request) -> str:
    """Where "another way" leads: the same page for that method (adding one is the enrolment
    page of a signed-in person; passkeys are added on their own page)."""
    if page == "add":
        return PASSKEYS if method == WEBAUTHN else method_url("enrol", method, rd(request))
    return method_url(page, method, rd(request))


def _refusal(reason: str) -> Forbidden | NotFound:
    if reason == "no_longer_offered":
        return Forbidden(
            N_("The way you set up for two-step sign-in is no longer offered here."),
            N_(
                "Ask your company's administrator to reset your two-step sign-in; then you "
                "can set up one of the methods offered now."
            ),
        )
    if reason == "not_available":
        return NotFound(
            N_("That sign-in method is not available to you."),
            N_("Go back and choose one of the methods offered."),
        )
    return NotFound(
        N_("No second-factor method is available to you."),
        N_("Ask the people who run this site which methods your company allows."),
    )


async def challenge_get(request: web.Request) -> web.StreamResponse:
    session = await pending(request)
    if not isinstance(session, Session):
        return session
    chosen = await _choose(request, session, "challenge")
    if not isinstance(chosen, tuple):
        return chosen
    return await REGISTRY[chosen[0]].challenge_get(request, session)


async def _refusal_while_waiting(
    request: web.Request, session: Session, user: str
) -> web.StreamResponse | None:
    """Before an answer is even looked at: a lockout ends the sign-in; a delay between wrong
    answers asks to try again shortly, on the same page (the answer is not counted). A
    signed-in person adding a method is refused for the while and stays signed in: a lockout
    that strangers' guesses can cause never ends a verified session."""
    lockout = await wait_for(visit(request), user)
    if lockout is None:
        return None
    metrics = runtime(request).metrics
    asked = request.query.get("method", "")
    method = asked if asked in REGISTRY else "unknown"  # not chosen yet: the page's, if valid
    metrics.count(metrics.challenges, method, DELAYED if lockout.is_delay else LOCKED_OUT)
    state, _effects = steps.step(steps.SignIn(steps.Stage.ASKED), steps.Waiting(lockout))
    if session.level is Level.VERIFIED:
        return refusal(request, lockout, ACCOUNT, N_("Back to two-step sign-in"))
    if state.stage is not steps.Stage.ENDED:
        return refusal(request, lockout, request.path_qs, N_("Back to the sign-in step"))
    await runtime(request).sessions.end(session)
    request[LOCKOUT] = lockout
    return start_again(request)


async def _posted(
    request: web.Request, page: str
) -> tuple[dict[str, str], Session, str] | web.StreamResponse:
    """The form once the CSRF token checks out, with the session the page works on and its user
    (an enrolment page's session adding a method must have a recent second factor)."""
    if page == "challenge":
        return await pending_post(request)
    form = await require_csrf(request)
    session = await _enrolling(request)
    if not isinstance(session, Session):
        return session
    assert session.user is not None
    if session.level is Level.VERIFIED:
        stale(request, session)  # a POST is refused, not redirected
    return form, session, session.user


async def _again(request: web.Request, page: str) -> Session | web.StreamResponse:
    """The page's session read anew from the store, after waiting for its turn."""
    if page == "challenge":
        return await pending_again(request)
    context(request).session_loaded = False
    return await _enrolling(request)


async def _post(request: web.Request, page: str) -> web.StreamResponse:
    """A POST to /.gateway/challenge or /.gateway/enrol: CSRF, the pending session (or a signed-in
    one adding a method), the lockout, then the chosen method's handler."""
    posted = await _posted(request, page)
    if not isinstance(posted, tuple):
        return posted
    form, session, user = posted
    if page == "challenge":  # "Remember this browser" (only where offered; completion checks)
        request[REMEMBER_TICKED] = form.get(remember.FIELD) == "yes"
    refused = await _refusal_while_waiting(request, session, user)
    if refused is not None:  # a locked-out answer does not even wait for its turn
        return refused
    async with one_at_a_time(visit(request), user) as mine:
        if not mine:
            return busy(request, request.path_qs, N_("Back to the sign-in step"))
        current = await _again(request, page)
        if not isinstance(current, Session) or current.user != user:
            return current if not isinstance(current, Session) else see_other(request.path_qs)
        session = current
        refused = await _refusal_while_waiting(request, session, user)
        if refused is not None:
            return refused
        chosen = await _choose(request, session, page)
        if not isinstance(chosen, tuple):
            return chosen
        if session.level is Level.VERIFIED and chosen[0] == WEBAUTHN:
            return see_other(PASSKEYS)
        pages = REGISTRY[chosen[0]]
        handler = pages.challenge_post if page == "challenge" else pages.enrol_post
        assert handler is not None
        token = answering.set(pages.name)  # a wrong answer is counted under its method
        try:
            return await handler(request, session, form)
        finally:
            answering.reset(token)


async def challenge_post(request: web.Request) -> web.StreamResponse:
    return await _post(request, "challenge")


async def _enrolling(request: web.Request) -> Session | web.StreamResponse:
    """The session of an enrolment page: the pending sign-in's; or, when a method is named, a
    signed-in user's adding a backup one (another way to sign in, should a phone be lost)."""
    session = await load_session(request)
    if (
        session is not None
        and session.level is Level.VERIFIED
        and session.user
        and "method" in request.query
    ):
        return session
    return await pending(request)


async def enrol_get(request: web.Request) -> web.StreamResponse:
    session = await _enrolling(request)
    if not isinstance(session, Session):
        return session
    chosen = await _choose(request, session, "enrol")
    if not isinstance(chosen, tuple):
        return chosen
    if session.level is Level.VERIFIED:
        refused = stale(request, session)  # adding a method changes how one signs in
        if refused is not None:
            return refused
        if chosen[0] == WEBAUTHN:  # passkeys are added (and named) on their own page
            return see_other(PASSKEYS)
    handler = REGISTRY[chosen[0]].enrol_get
    assert handler is not None
    return await handler(request, session)


async def enrol_post(request: web.Request) -> web.StreamResponse:
    return await _post(request, "enrol")
