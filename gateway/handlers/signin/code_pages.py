"""The pages every code method (text message, phone call, email) shares: the page to type a
code, what a wrong code leads to, and the challenge with an enrolled number or address.
Enrolment: phone_codes.py and email_codes.py, which register the methods."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway import metrics as answers
from gateway.factors import codes
from gateway.handlers.shared.attempts import code_tries_left, start_again, too_many_failures
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.methods import Page, Post
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, method_url, rd, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.signin.codes import (
    EMAIL,
    HEADINGS,
    NO_CODE,
    SEND_LABELS,
    SENT_AGAIN,
    binding,
    check_code,
    code_limits,
    code_waiting,
    send_code,
    sender_for,
    sent_again_text,
    void_code_text,
    wrong_code_text,
)
from gateway.runtime import Runtime
from gateway.sessions import Session

log = logging.getLogger("gateway.challenge")


def signed_in_as(session: Session, method: str, destination: str) -> str | None:
    """The account the page names ("signed in as"), unless it is the very address the code goes
    to: that address is shown once, masked, like a phone number."""
    user = session.user
    if method == EMAIL and user is not None and user.casefold() == destination.casefold():
        return None
    return user


async def _sent_again(request: web.Request, session: Session, method: str) -> bool:
    """Whether "Send again" just sent this method's code: said once, then forgotten."""
    if SENT_AGAIN not in session.scratch:
        return False
    again = session.scratch.pop(SENT_AGAIN)
    await runtime(request).sessions.save(session)
    return bool(again == method)


async def verify_page(
    request: web.Request,
    session: Session,
    method: str,
    destination: str,
    kind: str,
    *,
    error: str | None = None,
    problem: str | None = None,
    status: int = 200,
    **extra: Any,
) -> web.StreamResponse:
    to = codes.describe(method, destination)
    sent = await code_waiting(request, session, method)
    again = await _sent_again(request, session, method)
    return page(
        request,
        "code_verify.html",
        session,
        status=status,
        method=method,
        kind=kind,
        heading=HEADINGS[method],
        send_label=SEND_LABELS[method],
        sent=sent,
        sent_again=sent_again_text(method, to) if again and sent else None,
        to=to,
        signed_in_as=signed_in_as(session, method, destination),
        action=method_url(kind, method, rd(request)),
        error=error,
        problem=problem,
        minutes=int(code_limits(request, session).valid_for.total_seconds()) // 60,
        cooldown=int(code_limits(request, session).resend_after.total_seconds()),
        **extra,
    )


def count_answer(request: web.Request, kind: str, method: str, result: codes.Check) -> None:
    """The answer in gateway_challenges_total or gateway_enrolments_total (`kind`)."""
    metrics = runtime(request).metrics
    counter = metrics.challenges if kind == "challenge" else metrics.enrolments
    outcome = {codes.Outcome.OK: answers.OK, codes.Outcome.NONE: answers.NO_CODE}.get(
        result.outcome, answers.WRONG
    )
    metrics.count(counter, method, outcome)


async def wrong_code(
    request: web.Request, session: Session, method: str, result: codes.Check
) -> tuple[str, int] | web.StreamResponse:
    """After a refused code: its message and status, or the end of this sign-in when there have
    been too many wrong codes."""
    if result.outcome is codes.Outcome.NONE:
        return NO_CODE, 400  # nothing to guess at: not counted
    log.warning("wrong %s code for %s from %s", method, session.user, context(request).client_ip)
    if await too_many_failures(request, session):
        await runtime(request).store.delete_code(codes.record_key(method, binding(session)))
        return start_again(request)
    if result.outcome is codes.Outcome.VOID:
        return void_code_text(code_limits(request, session).tries), 401
    tries = await code_tries_left(request, session, result.tries_left)
    return f"{wrong_code_text(method)} {tries}", 401


async def _enrolled_destination(rt: Runtime, user: str, method: str) -> str | None:
    enrolment = await rt.store.get_enrolment(user, method)
    if enrolment is None:
        return None
    if method == EMAIL:
        return rt.secrets.cipher.decrypt(str(enrolment["address"]), f"email:{user}")
    return rt.secrets.cipher.decrypt(str(enrolment["phone"]), f"phone:{user}")


def challenge_pages(method: str) -> tuple[Page, Post]:
    """The challenge of `method`: a code sent (on a POST) to the enrolled number or address,
    then checked."""

    async def challenge_get(request: web.Request, session: Session) -> web.StreamResponse:
        assert session.user is not None
        destination = await _enrolled_destination(runtime(request), session.user, method)
        if destination is None:
            return see_other(gateway_url("enrol", rd(request)))
        return await verify_page(request, session, method, destination, "challenge")

    async def challenge_post(
        request: web.Request, session: Session, form: dict[str, str]
    ) -> web.StreamResponse:
        user = session.user
        assert user is not None
        destination = await _enrolled_destination(runtime(request), user, method)
        if destination is None:
            return see_other(gateway_url("enrol", rd(request)))
        if form.get("action") == "send":
            again = form.get("again") == "yes"
            problem = await send_code(request, session, method, destination, again=again)
            if problem is None:
                return see_other(method_url("challenge", method, rd(request)))
            return await verify_page(
                request,
                session,
                method,
                destination,
                "challenge",
                problem=problem[0],
                status=problem[1],
            )
        result = await check_code(request, session, method, destination, form.get("code", ""))
        count_answer(request, "challenge", method, result)
        if result.outcome is codes.Outcome.OK:
            log.info("second factor (%s) accepted for %s", method, user)
            return await complete(request, session, rd(request), via=method)
        refused = await wrong_code(request, session, method, result)
        if not isinstance(refused, tuple):
            return refused
        return await verify_page(
            request, session, method, destination, "challenge", error=refused[0], status=refused[1]
        )

    return challenge_get, challenge_post


def has_sender(method: str) -> Callable[[Runtime], bool]:
    """Whether this gateway can deliver `method`'s codes (MethodPages.available)."""
    return lambda rt: sender_for(rt, method) is not None
