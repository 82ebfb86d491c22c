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
from gateway.durations import human_duration
from gateway.handlers.shared.cookies import clear_session_cookie
from gateway.handlers.shared.request import context, runtime, visit
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
        title="Please wait a moment",
        message="Another answer for this account is being checked right now.",
        next_step="Wait a second, then try again.",
        link=back,
        link_text=back_text,
    )


def in_words(seconds: float) -> str:
    """A wait as a person says it: "40 seconds", "12 minutes", "2 hours 5 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole >= 60:  # whole minutes, rounded up: "in 12 minutes" is never too early
        whole = math.ceil(whole / 60) * 60
    return human_duration(timedelta(seconds=whole))


def refusal(
    request: web.Request, lockout: regulation.Lockout, back: str, back_text: str
) -> web.Response:
    """The 429 page: how long to wait, and where to go then."""
    rt = runtime(request)
    wait = max(1, math.ceil(lockout.until - rt.clock()))
    if lockout.is_delay:
        title = "Please wait a moment"
        message = "The last answers were not right, so each new try has to wait a little longer."
        next_step = (
            f"Try again in {wait} second{'s' if wait != 1 else ''}. This page goes back by "
            "itself when the wait is over."
        )
    else:
        when = datetime.fromtimestamp(lockout.until, UTC).strftime("%H:%M UTC")
        title = "Too many wrong answers"
        message = "There have been too many wrong answers for this sign-in recently."
        next_step = (
            f"Try again in {in_words(wait)} (at {when}), then sign in again. This page goes "
            "back by itself when the wait is over."
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
    SIGN_IN_ENDS: "then you sign in again with your password",
    "user_ip": "signing in to your account from here is then locked for up to {lasts}",
    "ip": "signing in from here is then locked for everyone for up to {lasts}",
    "user": "signing in to your account is then locked for up to {lasts}",
    "user_browser": "signing in to your account is then locked for up to {lasts}",
    "user_day": "signing in to your account is then locked for up to {lasts}",
}


def tries_left_text(left: TriesLeft) -> str:
    """The sentence a wrong answer's message ends with: "You have 2 more tries before this
    sign-in ends; then you sign in again with your password." ("" when none are left)."""
    if left.tries <= 0:
        return ""
    tries = f"{left.tries} more tr{'ies' if left.tries != 1 else 'y'}"
    then = _AT_THE_LIMIT.get(left.ends, _AT_THE_LIMIT["user"]).format(lasts=in_words(left.lasts))
    return f"You have {tries} before this sign-in ends; {then}."


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
    return f"{for_code} tr{'ies' if for_code != 1 else 'y'} left for this code."


def start_again(request: web.Request) -> web.Response:
    """The sign-in has ended after too many wrong answers: wait (if locked out), then sign in."""
    lockout = request.get(LOCKOUT)
    if lockout is not None:
        response = refusal(request, lockout, "/", "Go to the start page")
    else:
        response = runtime(request).pages.render(
            "error.html",
            company=context(request).known_company(),
            status=429,
            title="Too many wrong codes",
            message=(
                f"{MAX_FAILURES} answers in a row were not right, so this sign-in has been stopped."
            ),
            next_step="Sign in again with your password, then enter the code your app shows.",
            link="/",
        )
    clear_session_cookie(response, request)
    return response
