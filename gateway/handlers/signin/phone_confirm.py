"""/.gateway/phone/confirm: the member confirms the phone number a company admin set for them.

The admin's number is kept in the member's user record, encrypted, as the fact `pending_phone`
(gateway.handlers.admin.actions.change_phone) and is never used for sign-in codes as it is.
After the member's next second factor (shared/completion.complete sends them here) a code goes
to the new number, by text message or, for a line that takes no texts, a call; the right code
makes it the number of their phone enrolment. "Not now" keeps the old number and asks again at
the next sign-in; "This is not my number" drops the admin's number.

Codes are the sign-in codes of signin/codes.py: bound to this (verified) session, sent only
on a POST, rationed, and a wrong one counts like any wrong answer (attempts.too_many_failures).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway.admin import PENDING_PHONE
from gateway.audit import audit
from gateway.factors import codes as factor_codes
from gateway.factors.phone import LineType
from gateway.handlers.shared.attempts import (
    busy,
    code_tries_left,
    refusal,
    start_again,
    too_many_failures,
)
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import enrollable
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.handlers.signin.codes import (
    HEADINGS,
    NO_CODE,
    SEND_LABELS,
    SMS,
    VOICE,
    check_code,
    code_limits,
    code_waiting,
    send_code,
    void_code_text,
    wrong_code_text,
)
from gateway.i18n import N_
from gateway.policy.model import Company
from gateway.runtime import Runtime
from gateway.sessions import Level, Session, storage_key
from gateway.signin.attempts import answering, one_at_a_time, wait_for

log = logging.getLogger("gateway.challenge")

PAGE = "phone/confirm"
PENDING_FACTS = ("pending_phone", "pending_phone_line_type")
CONFIRMED = N_("A new phone number was added")
CANNOT_CONFIRM = N_(
    "This number cannot be confirmed here: codes by text message or phone call are not "
    "available for your account. Your sign-in codes still go where they went before."
)


def confirm_url(target: str) -> str:
    return gateway_url(PAGE, target)


def _url(target: str) -> str:
    return f"/.gateway/{PAGE}?{urlencode({'rd': target})}"


@dataclass(frozen=True)
class Pending:
    phone: str  # E.164
    line_type: str  # a LineType value


async def pending_phone(rt: Runtime, user: str) -> Pending | None:
    """The number an admin set for `user` and they have not confirmed, decrypted."""
    record = await rt.store.get_user(user)
    if record is None or not record.facts.get("pending_phone"):
        return None
    phone = rt.secrets.cipher.decrypt(str(record.facts["pending_phone"]), PENDING_PHONE + user)
    line_type = str(record.facts.get("pending_phone_line_type") or LineType.UNKNOWN.value)
    return Pending(phone, line_type)


def _method(request: web.Request, session: Session, pending: Pending) -> str | None:
    """How the code goes to the number: a text to a mobile, else a call; None when the policy
    or the gateway's senders allow neither for it."""
    offered = enrollable(company_for(request, session.user), runtime(request))
    if SMS in offered and pending.line_type == LineType.MOBILE.value:
        return SMS
    return VOICE if VOICE in offered else None


async def _verified(request: web.Request) -> Session | web.StreamResponse:
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", rd(request)))
    return session


async def _page(
    request: web.Request,
    session: Session,
    pending: Pending,
    *,
    error: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.StreamResponse:
    method = _method(request, session, pending)
    limits = code_limits(request, session)
    return page(
        request,
        "phone_confirm.html",
        session,
        status=status,
        method=method,
        ending=pending.phone[-4:],
        heading=HEADINGS[method] if method else None,
        send_label=SEND_LABELS[method] if method else None,
        sent=method is not None and await code_waiting(request, session, method),
        action=_url(rd(request)),
        cannot_confirm=CANNOT_CONFIRM if method is None else None,
        error=error,
        problem=problem,
        minutes=int(limits.valid_for.total_seconds()) // 60,
        cooldown=int(limits.resend_after.total_seconds()),
    )


async def confirm_get(request: web.Request) -> web.StreamResponse:
    session = await _verified(request)
    if not isinstance(session, Session):
        return session
    assert session.user is not None
    pending = await pending_phone(runtime(request), session.user)
    if pending is None:
        return see_other(rd(request))
    return await _page(request, session, pending)


async def confirm_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    session = await _verified(request)
    if not isinstance(session, Session):
        return session
    user = session.user
    assert user is not None
    action = form.get("action", "verify")
    if action == "later":
        return see_other(rd(request))
    if action == "reject":
        return await _reject(request, session)
    lockout = await wait_for(visit(request), user)
    if lockout is not None:  # not even looked at while the user must wait
        return refusal(request, lockout, request.path_qs, N_("Back to the phone number"))
    async with one_at_a_time(visit(request), user) as mine:
        if not mine:
            return busy(request, request.path_qs, N_("Back to the phone number"))
        context(request).session_loaded = False  # what the answers before this one did
        current = await _verified(request)
        if not isinstance(current, Session) or current.user != user:
            return current if not isinstance(current, Session) else see_other(request.path_qs)
        pending = await pending_phone(runtime(request), user)
        if pending is None:
            return see_other(rd(request))
        method = _method(request, current, pending)
        if method is None:
            return await _page(request, current, pending, status=409)
        token = answering.set(method)  # a wrong code is counted under its method
        try:
            if action == "send":
                problem = await send_code(request, current, method, pending.phone)
                if problem is None:
                    return see_other(_url(rd(request)))
                return await _page(request, current, pending, problem=problem[0], status=problem[1])
            return await _verify(request, current, method, pending, form.get("code", ""))
        finally:
            answering.reset(token)


async def _verify(
    request: web.Request, session: Session, method: str, pending: Pending, given: str
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    result = await check_code(request, session, method, pending.phone, given)
    if result.outcome is factor_codes.Outcome.NONE:
        return await _page(request, session, pending, error=NO_CODE, status=400)
    if result.outcome is not factor_codes.Outcome.OK:
        log.warning("wrong %s code for the new number of %s", method, user)
        if await too_many_failures(request, session):
            await rt.store.delete_code(factor_codes.record_key(method, storage_key(session.id)))
            return start_again(request)
        if result.outcome is factor_codes.Outcome.VOID:
            void = void_code_text(code_limits(request, session).tries)
            return await _page(request, session, pending, error=void, status=401)
        tries = await code_tries_left(request, session, result.tries_left)
        error = f"{wrong_code_text(method)} {tries}"
        return await _page(request, session, pending, error=error, status=401)
    await _replace_phone(request, session, method, pending)
    return see_other(rd(request))


async def _replace_phone(
    request: web.Request, session: Session, method: str, pending: Pending
) -> None:
    """The confirmed number becomes the member's phone enrolment (text messages and calls, as
    at enrolment); a phone method it cannot serve no longer holds the old number."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    company = company_for(request, user)
    record: dict[str, Any] = {
        "phone": rt.secrets.cipher.encrypt(pending.phone, f"phone:{user}"),
        "line_type": pending.line_type,
        "created": rt.clock(),
    }
    methods = [method]
    if method == SMS and VOICE in enrollable(company, rt):
        methods.append(VOICE)  # a mobile takes calls too
    for name in (SMS, VOICE):
        if name in methods:
            await rt.store.put_enrolment(user, name, record)
        else:
            await rt.store.delete_enrolment(user, name)
    await _clear_pending(rt, user, company)
    log.info("%s confirmed the new phone number set by an admin (%s)", user, "+".join(methods))
    await announce_factor(
        request,
        session,
        "phone_confirmed",
        method,
        CONFIRMED,
        company=company.id if company is not None else None,
        methods=methods,
        ending=pending.phone[-4:],
    )


async def _clear_pending(rt: Runtime, user: str, company: Company | None) -> None:
    """The pending facts removed (a None value removes a fact); the record keeps its company."""
    record = await rt.store.get_user(user)
    company_id = company.id if company is not None else record.company if record else None
    await rt.store.note_user(user, company_id, rt.clock(), dict.fromkeys(PENDING_FACTS))


async def _reject(request: web.Request, session: Session) -> web.StreamResponse:
    """ "This is not my number": the admin's number is dropped, and the member's kept."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    if await pending_phone(rt, user) is not None:
        company = company_for(request, user)
        await _clear_pending(rt, user, company)
        ctx = context(request)
        audit(
            "phone_rejected",
            user=user,
            company=company.id if company is not None else None,
            ip=ctx.client_ip,
            request_id=ctx.request_id,
        )
        log.info("%s said the phone number an admin set is not theirs", user)
    return see_other(rd(request))
