"""Codes by text message, phone call and email: enrolment (a number or an address proven by a
code) and the challenge, with "send again" rationed and sender failures told plainly.

A code is sent only on a POST (never on a page load), is bound to the pending session that asked
for it, and is checked with `gateway.factors.codes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway import metrics as answers
from gateway.audit import audit
from gateway.factors import codes
from gateway.factors.phone import InvalidNumber, LineType, parse
from gateway.handlers.shared.attempts import start_again, too_many_failures
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import MethodPages, Page, Post, enrollable, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime, site_name
from gateway.keys import OTHER_WAYS
from gateway.notices import address_of
from gateway.policy.model import CodeLimits
from gateway.runtime import Runtime
from gateway.senders import Sender, SendFailed
from gateway.senders.smtp import is_single_address
from gateway.sessions import Session, storage_key

log = logging.getLogger("gateway.challenge")

SMS, VOICE, EMAIL = "sms", "voice", "email"
PHONE_METHODS = (SMS, VOICE)
LABELS = {SMS: "Text message (SMS)", VOICE: "Phone call", EMAIL: "Email"}
SEND_LABELS = {SMS: "Text me a code", VOICE: "Call me with a code", EMAIL: "Email me a code"}
HEADINGS = {
    SMS: "Enter the code we texted you",
    VOICE: "Enter the code from our call",
    EMAIL: "Enter the code we emailed you",
}
PHONE_ADDED = "A phone number was added"
EMAIL_ADDED = "An email address was added"

WRONG_CODE = "That code is not right. Check the latest message and enter its 6 digits."
VOID_CODE = "That code was entered wrongly {tries} times and no longer works. Ask for a new code."
NO_CODE = (
    "There is no code waiting for this sign-in: it has expired, been "
    "used, or was not sent. Ask for a new code."
)
SEND_FAILED = "The code could not be sent just now. Try again in a few minutes"
NO_ADDRESS = (
    "No email address is known for your account, so a code cannot be emailed to you. "
    "Choose another way below."
)


def _url(kind: str, method: str, target: str) -> str:
    return f"/.gateway/{kind}?{urlencode({'method': method, 'rd': target})}"


def _sender(rt: Runtime, method: str) -> Sender | None:
    return {SMS: rt.senders.sms, VOICE: rt.senders.voice, EMAIL: rt.senders.email}[method]


def _key(rt: Runtime) -> bytes:
    return codes.derive_key(rt.secrets.signing_keys[0])


def _binding(session: Session) -> str:
    """The pending session's id (it does not change until the second factor is done), hashed."""
    return storage_key(session.id)


def _mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    shown = local[0] + "•••" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"


def _describe(method: str, destination: str) -> str:
    if method == EMAIL:
        return _mask_email(destination)
    return f"the number ending in {destination[-4:]}"


def _limits(request: web.Request, session: Session) -> CodeLimits:
    company = company_for(request, session.user)
    return company.codes if company is not None else codes.DEFAULT_LIMITS


def _messages(method: str, code: str, site: str, limits: CodeLimits) -> tuple[str, str]:
    """(subject, text) of the message that carries the code."""
    minutes = int(limits.valid_for.total_seconds()) // 60
    if method == SMS:
        return "", f"{code} is your {site} sign-in code. It expires in {minutes} minutes. " + (
            "Do not give it to anyone."
        )
    if method == VOICE:
        spoken = ", ".join(code)
        return "", f"Your {site} sign-in code is: {spoken}. Again, your code is: {spoken}."
    body = (
        f"Your sign-in code for {site} is:\n\n    {code}\n\n"
        f"It works once, for {minutes} minutes.\n\n"
        "If you did not just try to sign in, someone may know your password: change it, and "
        "tell your company's administrator.\n"
    )
    return f"Your {site} sign-in code", body


async def _deliver(sender: Sender, method: str, to: str, subject: str, text: str) -> None:
    if method == SMS:
        await sender.send_sms(to, text)
    elif method == VOICE:
        await sender.place_call(to, text)
    else:
        await sender.send_email(to, subject, text)


async def send_code(
    request: web.Request, session: Session, method: str, destination: str
) -> tuple[str, int] | None:
    """Send a new code; None when it went out, else (what to tell the user, status). A code
    that could not be sent is neither stored nor counted against the user's sends."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    now = rt.clock()
    limits = _limits(request, session)
    pause = limits.resend_after.total_seconds()
    if await rt.store.reserve_send(user, now, pause, limits.sends_per_hour):
        return await _send_reserved(request, session, method, destination, now, limits)
    wait = codes.send_wait(await rt.store.sends_since(user, now - codes.HOUR), now, limits)
    if wait.capped:
        minutes = (wait.seconds + 59) // 60
        return (
            f"{limits.sends_per_hour} codes have been sent to you in the last hour, the most we "
            f"send. You can ask for another in {minutes} minute{'s' if minutes != 1 else ''}, "
            "or choose another way.",
            429,
        )
    seconds = max(wait.seconds, 1)  # refused by the store even if the times look clear
    return (
        f"A code was sent a moment ago. You can ask for another in {seconds} "
        f"second{'s' if seconds != 1 else ''}.",
        429,
    )


async def _send_reserved(
    request: web.Request,
    session: Session,
    method: str,
    destination: str,
    now: float,
    limits: CodeLimits,
) -> tuple[str, int] | None:
    """Deliver a code whose send slot is reserved; a failed delivery gives the slot back."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    sender = _sender(rt, method)
    ip = context(request).client_ip
    code, record = codes.issue(_key(rt), method, _binding(session), destination, now, limits)
    subject, text = _messages(method, code, site_name(request, user), limits)
    try:
        if sender is None:
            raise SendFailed(f"no sender is configured for {method}")
        await _deliver(sender, method, destination, subject, text)
    except SendFailed as exc:
        await rt.store.release_send(user, now)
        log.warning("the %s code for %s could not be sent: %s", method, user, exc)
        audit("code_send_failed", method=method, user=user, ip=ip, reason=str(exc))
        rt.metrics.count(rt.metrics.codes_sent, method, "failed")
        another = " or choose another way below." if request.get(OTHER_WAYS) else "."
        return SEND_FAILED + another, 503
    await rt.store.put_code(
        codes.record_key(method, _binding(session)), record, float(record["expires_at"])
    )
    audit("code_sent", method=method, user=user, ip=ip)
    rt.metrics.count(rt.metrics.codes_sent, method, "sent")
    return None


async def check_code(
    request: web.Request, session: Session, method: str, destination: str, given: str
) -> codes.Check:
    """Check a typed code. The code is taken out of the store first, so of two answers racing
    (on two gateways) only one can use it; a wrong one goes back with one more try counted."""
    rt = runtime(request)
    key = codes.record_key(method, _binding(session))
    now = rt.clock()
    record = await rt.store.take_code(key, now)
    result = codes.check(
        _key(rt),
        record,
        method,
        _binding(session),
        destination,
        given,
        now,
        _limits(request, session),
    )
    if result.record is not None:
        await rt.store.put_code(key, result.record, float(result.record["expires_at"]))
    return result


async def code_waiting(request: web.Request, session: Session, method: str) -> bool:
    """Whether a code for this session and method is waiting in the store."""
    rt = runtime(request)
    key = codes.record_key(method, _binding(session))
    return await rt.store.get_code(key, rt.clock()) is not None


async def _verify_page(
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
    return page(
        request,
        "code_verify.html",
        session,
        status=status,
        method=method,
        kind=kind,
        heading=HEADINGS[method],
        send_label=SEND_LABELS[method],
        sent=await code_waiting(request, session, method),
        to=_describe(method, destination),
        action=_url(kind, method, rd(request)),
        error=error,
        problem=problem,
        minutes=int(_limits(request, session).valid_for.total_seconds()) // 60,
        cooldown=int(_limits(request, session).resend_after.total_seconds()),
        **extra,
    )


def _count(request: web.Request, kind: str, method: str, result: codes.Check) -> None:
    """The answer in gateway_challenges_total or gateway_enrolments_total (`kind`)."""
    metrics = runtime(request).metrics
    counter = metrics.challenges if kind == "challenge" else metrics.enrolments
    outcome = {codes.Outcome.OK: answers.OK, codes.Outcome.NONE: answers.NO_CODE}.get(
        result.outcome, answers.WRONG
    )
    metrics.count(counter, method, outcome)


async def _wrong(
    request: web.Request, session: Session, method: str, result: codes.Check
) -> tuple[str, int] | web.StreamResponse:
    """After a refused code: its message and status, or the end of this sign-in when there have
    been too many wrong codes."""
    if result.outcome is codes.Outcome.NONE:
        return NO_CODE, 400  # nothing to guess at: not counted
    log.warning("wrong %s code for %s from %s", method, session.user, context(request).client_ip)
    if await too_many_failures(request, session):
        await runtime(request).store.delete_code(codes.record_key(method, _binding(session)))
        return start_again(request)
    if result.outcome is codes.Outcome.VOID:
        return VOID_CODE.format(tries=_limits(request, session).tries), 401
    left = result.tries_left
    return f"{WRONG_CODE} {left} tr{'ies' if left != 1 else 'y'} left for this code.", 401


# --- the challenge ---------------------------------------------------------------------------


async def _enrolled_destination(rt: Runtime, user: str, method: str) -> str | None:
    enrolment = await rt.store.get_enrolment(user, method)
    if enrolment is None:
        return None
    if method == EMAIL:
        return rt.secrets.cipher.decrypt(str(enrolment["address"]), f"email:{user}")
    return rt.secrets.cipher.decrypt(str(enrolment["phone"]), f"phone:{user}")


def _challenge(method: str) -> tuple[Page, Post]:
    async def challenge_get(request: web.Request, session: Session) -> web.StreamResponse:
        assert session.user is not None
        destination = await _enrolled_destination(runtime(request), session.user, method)
        if destination is None:
            return see_other(gateway_url("enrol", rd(request)))
        return await _verify_page(request, session, method, destination, "challenge")

    async def challenge_post(
        request: web.Request, session: Session, form: dict[str, str]
    ) -> web.StreamResponse:
        user = session.user
        assert user is not None
        destination = await _enrolled_destination(runtime(request), user, method)
        if destination is None:
            return see_other(gateway_url("enrol", rd(request)))
        if form.get("action") == "send":
            problem = await send_code(request, session, method, destination)
            if problem is None:
                return see_other(_url("challenge", method, rd(request)))
            return await _verify_page(
                request,
                session,
                method,
                destination,
                "challenge",
                problem=problem[0],
                status=problem[1],
            )
        result = await check_code(request, session, method, destination, form.get("code", ""))
        _count(request, "challenge", method, result)
        if result.outcome is codes.Outcome.OK:
            log.info("second factor (%s) accepted for %s", method, user)
            return await complete(request, session, rd(request), via=method)
        refused = await _wrong(request, session, method, result)
        if not isinstance(refused, tuple):
            return refused
        return await _verify_page(
            request, session, method, destination, "challenge", error=refused[0], status=refused[1]
        )

    return challenge_get, challenge_post


# --- enrolment: phone numbers ------------------------------------------------------------------


def _app_url(request: web.Request, session: Session) -> str | None:
    """The authenticator-app enrolment, where the policy allows it: the advice for landlines."""
    if "totp" not in enrollable(company_for(request, session.user), runtime(request)):
        return None
    return _url("enrol", "totp", rd(request))


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
        action=_url("enrol", method, rd(request)),
        region=runtime(request).senders.default_region,
        error=error,
        number=number,
        line_type=line_type.value if line_type else None,
        voice_url=_url("enrol", VOICE, rd(request))
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
    return await _verify_page(
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
            await rt.store.delete_code(codes.record_key(method, _binding(session)))
            return see_other(_url("enrol", method, rd(request)))
        if action == "send":
            problem = await send_code(request, session, method, pending["phone"])
            if problem is None:
                return see_other(_url("enrol", method, rd(request)))
            return await _phone_verify_page(
                request, session, method, pending, problem=problem[0], status=problem[1]
            )
        enrolled = await rt.store.list_methods(user)
        if method in enrolled:
            return see_other(gateway_url("challenge", rd(request)))  # enrolled meanwhile
        result = await check_code(request, session, method, pending["phone"], form.get("code", ""))
        _count(request, "enrol", method, result)
        if result.outcome is not codes.Outcome.OK:
            refused = await _wrong(request, session, method, result)
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
        if method == SMS and _may_enrol(request, session, VOICE):
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
    await rt.store.delete_code(codes.record_key(method, _binding(session)))  # for another number
    problem = await send_code(request, session, method, phone.e164)
    if problem is None:
        return see_other(_url("enrol", method, rd(request)))
    return await _phone_verify_page(
        request, session, method, session.scratch[method], problem=problem[0], status=problem[1]
    )


# --- enrolment: email --------------------------------------------------------------------------


def _address(session: Session) -> str | None:
    """The address codes go to: the user's own, when it is one plain email address."""
    assert session.user is not None
    address = address_of(session.user, session.identity.get("email"))
    return address if address is not None and is_single_address(address) else None


async def email_enrol_get(request: web.Request, session: Session) -> web.StreamResponse:
    address = _address(session)
    if address is None:
        return page(request, "email_unknown.html", session, message=NO_ADDRESS)
    return await _verify_page(request, session, EMAIL, address, "enrol")


async def email_enrol_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    address = _address(session)
    if address is None:
        return page(request, "email_unknown.html", session, status=400, message=NO_ADDRESS)
    if form.get("action") == "send":
        problem = await send_code(request, session, EMAIL, address)
        if problem is None:
            return see_other(_url("enrol", EMAIL, rd(request)))
        return await _verify_page(
            request, session, EMAIL, address, "enrol", problem=problem[0], status=problem[1]
        )
    enrolled = await rt.store.list_methods(user)
    if EMAIL in enrolled:
        return see_other(gateway_url("challenge", rd(request)))
    result = await check_code(request, session, EMAIL, address, form.get("code", ""))
    _count(request, "enrol", EMAIL, result)
    if result.outcome is not codes.Outcome.OK:
        refused = await _wrong(request, session, EMAIL, result)
        if not isinstance(refused, tuple):
            return refused
        return await _verify_page(
            request, session, EMAIL, address, "enrol", error=refused[0], status=refused[1]
        )
    await rt.store.put_enrolment(
        user,
        EMAIL,
        {"address": rt.secrets.cipher.encrypt(address, f"email:{user}"), "created": rt.clock()},
    )
    ip = context(request).client_ip
    log.info("email address enrolled for %s from %s", user, ip)
    await announce_factor(request, session, "factor_added", EMAIL, EMAIL_ADDED)
    return await complete(request, session, rd(request), via=EMAIL, first_enrolment=not enrolled)


def _has_sender(method: str) -> Callable[[Runtime], bool]:
    return lambda rt: _sender(rt, method) is not None


def _register() -> None:
    for method in PHONE_METHODS:
        challenge_get, challenge_post = _challenge(method)
        enrol_get, enrol_post = _phone_enrol(method)
        register(
            MethodPages(
                name=method,
                label=LABELS[method],
                challenge_get=challenge_get,
                challenge_post=challenge_post,
                enrol_get=enrol_get,
                enrol_post=enrol_post,
                available=_has_sender(method),
            )
        )
    challenge_get, challenge_post = _challenge(EMAIL)
    register(
        MethodPages(
            name=EMAIL,
            label=LABELS[EMAIL],
            challenge_get=challenge_get,
            challenge_post=challenge_post,
            enrol_get=email_enrol_get,
            enrol_post=email_enrol_post,
            available=_has_sender(EMAIL),
        )
    )


_register()
