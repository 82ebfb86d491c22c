"""What wrong answers lead to: counting one in a sign-in (and ending it past the limit), the page
that says it has ended, and the 429 pages that say an answer must wait (while another answer of
the user is checked, or for a lockout or delay). What is counted and when: gateway.signin.attempts
and gateway.signin.steps."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway import regulation
from gateway.handlers.shared.cookies import clear_session_cookie
from gateway.handlers.shared.request import context, runtime, visit
from gateway.i18n import N_, duration_words, gettext, ngettext, time_words
from gateway.keys import LOCKOUT
from gateway.sessions import MAX_FAILURES, Level, Session
from gateway.signin import steps
from gateway.signin.attempts import SIGN_IN_ENDS, TriesLeft, count_failure
from gateway.signin.attempts import tries_left as count_left

log = logging.getLogger("gateway.challenge")


def busy(request: web.Request, back: str, back_text: str) -> web.Response:
    """429: another answer of this user is being checked right now."""
    return runtime(request).pages.render(
        "error.html",
        company=context(request).known_company(),
        status=429,
        headers={"Retry-After": "1"},
        title=N_("Please wait a moment"),
        message=N_("Another answer for this account is being checked right now."),
        next_step=N_("Wait a second, then try again."),
        link=back,
        link_text=back_text,
    )


def in_words(seconds: float) -> str:
    """A wait as a person says it: "40 seconds", "12 minutes", "2 hours 5 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole >= 60:  # whole minutes, rounded up: "in 12 minutes" is never too early
        whole = math.ceil(whole / 60) * 60
    return duration_words(timedelta(seconds=whole))


def refusal(
    request: web.Request, lockout: regulation.Lockout, back: str, back_text: str
) -> web.Response:
    """The 429 page: how long to wait, and where to go then."""
    rt = runtime(request)
    wait = max(1, math.ceil(lockout.until - rt.clock()))
    if lockout.is_delay:
        title = N_("Please wait a moment")
        message = N_(
            "The last answers were not right, so each new try has to wait a little longer."
        )
        next_step = ngettext(
            "Try again in %(num)s second. This page goes back by itself when the wait is over.",
            "Try again in %(num)s seconds. This page goes back by itself when the wait is over.",
            wait,
        )
    else:
        when = time_words(datetime.fromtimestamp(lockout.until, UTC))
        title = N_("Too many wrong answers")
        message = N_("There have been too many wrong answers for this sign-in recently.")
        next_step = gettext(
            "Try again in %(wait)s (at %(when)s), then sign in again. This page goes back by "
            "itself when the wait is over.",
            wait=in_words(wait),
            when=when,
        )
    return rt.pages.render(
        "error.html",
        company=context(request).known_company(),
        status=429,
        refresh=(wait, back),  # the page moves on by itself when the wait is over, without scripts
        headers={"Retry-After": str(wait)},
        title=title,
        message=message,
        next_step=next_step,
        link=back,
        link_text=back_text,
    )


async def too_many_failures(request: web.Request, session: Session) -> bool:
    """Count a wrong answer, in this sign-in and in the store by user and address; past a limit
    the pending session ends, so every further guess costs the password again, and past the
    store's limits nobody may try for a while. A mere delay leaves the sign-in going (and is
    mentioned on the page). The rule: gateway.signin.steps. A signed-in person adding a method
    is counted in the store alike, but stays signed in (their count starts again): the code's
    own tries and the store's lockouts bound the guesses."""
    rt = runtime(request)
    assert session.user is not None
    method = request.query.get("method") or "second factor"
    lockout = await count_failure(visit(request), session.user, method[:32])
    state = steps.SignIn(steps.Stage.ASKED, session.failures)
    state, effects = steps.step(state, steps.WrongAnswer(lockout))
    session.failures = state.failures
    for effect in effects:  # a delay is mentioned on the page, a lockout explained
        if isinstance(effect, steps.Wait):
            request[LOCKOUT] = effect.lockout
    if state.stage is steps.Stage.ENDED and session.level is Level.VERIFIED:
        session.failures = 0
    elif state.stage is steps.Stage.ENDED:
        await rt.sessions.end(session)
        log.warning("too many wrong answers for %s: pending session ended", session.user)
        return True
    await rt.sessions.save(session)
    return False


# what the last of the tries left leads to, by what ends the sign-in (attempts.TriesLeft.ends)
_AT_THE_LIMIT = {
    SIGN_IN_ENDS: N_("then you sign in again with your password"),
    "user_ip": N_("signing in to your account from here is then locked for up to %(lasts)s"),
    "ip": N_("signing in from here is then locked for everyone for up to %(lasts)s"),
    "user": N_("signing in to your account is then locked for up to %(lasts)s"),
    "user_browser": N_("signing in to your account is then locked for up to %(lasts)s"),
    "user_day": N_("signing in to your account is then locked for up to %(lasts)s"),
}


def tries_left_text(left: TriesLeft) -> str:
    """The sentence a wrong answer's message ends with: "You have 2 more tries before this
    sign-in ends; then you sign in again with your password." ("" when none are left)."""
    if left.tries <= 0:
        return ""
    then = _AT_THE_LIMIT.get(left.ends, _AT_THE_LIMIT["user"])
    then = gettext(then, lasts=in_words(left.lasts)) if "%(" in then else gettext(then)
    return ngettext(
        "You have %(num)s more try before this sign-in ends; %(then)s.",
        "You have %(num)s more tries before this sign-in ends; %(then)s.",
        left.tries,
        then=then,
    )


async def tries_left(request: web.Request, session: Session) -> str:
    """After a wrong answer that left the sign-in going (too_many_failures said False): how many
    more it takes, and what the last of them leads to (tries_left_text); nothing for a
    signed-in person adding a method, whose session does not end."""
    assert session.user is not None
    if session.level is Level.VERIFIED:
        return ""
    return tries_left_text(await count_left(visit(request), session.user, session.failures))


async def code_tries_left(request: web.Request, session: Session, for_code: int) -> str:
    """After a wrong sent code (text, call, email) with `for_code` tries left on that code: the
    sooner of its own limit and the sign-in's (tries_left), so the page never promises tries
    the sign-in will not give."""
    assert session.user is not None
    overall = await count_left(visit(request), session.user, session.failures)
    if overall.tries <= for_code and session.level is not Level.VERIFIED:
        return tries_left_text(overall)
    return ngettext(
        "%(num)s try left for this code.", "%(num)s tries left for this code.", for_code
    )


def start_again(request: web.Request) -> web.Response:
    """The sign-in has ended after too many wrong answers: wait (if locked out), then sign in."""
    lockout = request.get(LOCKOUT)
    if lockout is not None:
        response = refusal(request, lockout, "/", N_("Go to the start page"))
    else:
        response = runtime(request).pages.render(
            "error.html",
            company=context(request).known_company(),
            status=429,
            title=N_("Too many wrong codes"),
            message=gettext(
                "%(count)s answers in a row were not right, so this sign-in has been stopped.",
                count=MAX_FAILURES,
            ),
            next_step=N_("Sign in again with your password, then enter the code your app shows."),
            link="/",
        )
    clear_session_cookie(response, request)
    return response
