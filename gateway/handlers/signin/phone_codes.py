"""Enrolling a phone number for codes by text message or phone call: the number (a likely
landline is offered a call or an authenticator app instead of texts), then a code sent to it.
Registers the `sms` and `voice` methods; their challenge is code_pages.challenge_pages."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.factors import codes
from gateway.factors.phone import InvalidNumber, LineType, parse
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import MethodPages, Page, Post, enrollable, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, method_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.handlers.signin.code_pages import (
    challenge_pages,
    count_answer,
    has_sender,
    verify_page,
    wrong_code,
)
from gateway.handlers.signin.codes import (
    LABELS,
    PHONE_METHODS,
    SMS,
    VOICE,
    binding,
    check_code,
    send_code,
)
from gateway.i18n import N_
from gateway.sessions import Session

log = logging.getLogger("gateway.challenge")

PHONE_ADDED = N_("A phone number was added")


def _app_url(request: web.Request, session: Session) -> str | None:
    """The authenticator-app enrolment, where the policy allows it: the advice for landlines."""
    if "totp" not in enrollable(company_for(request, session.user), runtime(request)):
        return None
    return method_url("enrol", "totp", rd(request))


def _may_enrol(request: web.Request, session: Session, method: str) -> bool:
    return method in enrollable(company_for(request, session.user), runtime(request))


def _phone_page(
    request: web.Request,
    session: Session,
    method: str,
    *,
    error: str | None = None,
    status: int = 200,
    number: str = "",
    line_type: LineType | None = None,
) -> web.Response:
    return page(
        request,
        "phone_number.html",
        session,
        status=status,
        method=method,
        action=method_url("enrol", method, rd(request)),
        region=runtime(request).senders.default_region,
        error=error,
        number=number,
        line_type=line_type.value if line_type else None,
        voice_url=method_url("enrol", VOICE, rd(request))
        if _may_enrol(request, session, VOICE)
        else None,
        app_url=_app_url(request, session),
    )


def _pending_phone(session: Session, method: str) -> dict[str, str] | None:
    pending = session.scratch.get(method)
    return pending if isinstance(pending, dict) and "phone" in pending else None


async def _phone_verify_page(
    request: web.Request, session: Session, method: str, pending: dict[str, str], **extra: Any
) -> web.StreamResponse:
    landline = pending.get("line_type") == LineType.FIXED_LINE.value
    return await verify_page(
        request,
        session,
        method,
        pending["phone"],
        "enrol",
        change_number=True,
        app_url=_app_url(request, session) if landline else None,
        **extra,
    )


def _phone_enrol(method: str) -> tuple[Page, Post]:
    async def enrol_get(request: web.Request, session: Session) -> web.StreamResponse:
        pending = _pending_phone(session, method)
        if pending is None:
            return _phone_page(request, session, method)
        return await _phone_verify_page(request, session, method, pending)

    async def enrol_post(
        request: web.Request, session: Session, form: dict[str, str]
    ) -> web.StreamResponse:
        rt = runtime(request)
        user = session.user
        assert user is not None
        action = form.get("action", "verify")
        pending = _pending_phone(session, method)
        if action == "number":
            return await _take_number(request, session, method, form.get("phone", ""))
        if action == "change" or pending is None:
            session.scratch.pop(method, None)
            await rt.sessions.save(session)
            await rt.store.delete_code(codes.record_key(method, binding(session)))
            return see_other(method_url("enrol", method, rd(request)))
        if action == "send":
            again = form.get("again") == "yes"
            problem = await send_code(request, session, method, pending["phone"], again=again)
            if problem is None:
                return see_other(method_url("enrol", method, rd(request)))
            return await _phone_verify_page(
                request, session, method, pending, problem=problem[0], status=problem[1]
            )
        enrolled = await rt.store.list_methods(user)
        if method in enrolled:
            return see_other(gateway_url("challenge", rd(request)))  # enrolled meanwhile
        result = await check_code(request, session, method, pending["phone"], form.get("code", ""))
        count_answer(request, "enrol", method, result)
        if result.outcome is not codes.Outcome.OK:
            refused = await wrong_code(request, session, method, result)
            if not isinstance(refused, tuple):
                return refused
            return await _phone_verify_page(
                request, session, method, pending, error=refused[0], status=refused[1]
            )
        record = {
            "phone": rt.secrets.cipher.encrypt(pending["phone"], f"phone:{user}"),
            "line_type": pending["line_type"],
            "created": rt.clock(),
        }
        methods = [method]
        if method == SMS and VOICE not in enrolled and _may_enrol(request, session, VOICE):
            methods.append(VOICE)  # a mobile takes calls too: "try another way" at sign-in
        for name in methods:
            await rt.store.put_enrolment(user, name, record)
        session.scratch.pop(method, None)
        ip = context(request).client_ip
        log.info("phone number enrolled (%s) for %s from %s", "+".join(methods), user, ip)
        await announce_factor(
            request, session, "factor_added", method, PHONE_ADDED, also=methods[1:] or None
        )
        first = not enrolled
        return await complete(request, session, rd(request), via=method, first_enrolment=first)

    return enrol_get, enrol_post


async def _take_number(
    request: web.Request, session: Session, method: str, typed: str
) -> web.StreamResponse:
    rt = runtime(request)
    try:
        phone = parse(typed, rt.senders.default_region)
    except InvalidNumber as exc:
        return _phone_page(request, session, method, error=str(exc), status=400, number=typed)
    if method == SMS and not phone.line_type.takes_sms:
        # The Datto seed: a likely landline, or a number whose type cannot be known (US and
        # Canada), is offered a call or an authenticator app instead of a text message.
        return _phone_page(request, session, method, number=phone.e164, line_type=phone.line_type)
    session.scratch[method] = {"phone": phone.e164, "line_type": phone.line_type.value}
    await rt.sessions.save(session)
    await rt.store.delete_code(codes.record_key(method, binding(session)))  # for another number
    problem = await send_code(request, session, method, phone.e164)
    if problem is None:
        return see_other(method_url("enrol", method, rd(request)))
    return await _phone_verify_page(
        request, session, method, session.scratch[method], problem=problem[0], status=problem[1]
    )


def _register() -> None:
    for method in PHONE_METHODS:
        challenge_get, challenge_post = challenge_pages(method)
        enrol_get, enrol_post = _phone_enrol(method)
        register(
            MethodPages(
                name=method,
                label=LABELS[method],
                challenge_get=challenge_get,
                challenge_post=challenge_post,
                enrol_get=enrol_get,
                enrol_post=enrol_post,
                available=has_sender(method),
            )
        )


_register()
