"""Codes by text message, phone call and email: what the message says, sending one (rationed,
sender failures told plainly) and checking one. The pages that use them: code_pages.py (typing
a code, the challenge), phone_codes.py and email_codes.py (enrolment), phone_confirm.py.

A code is sent only on a POST (never on a page load), is bound to the pending session that asked
for it, and is checked with `gateway.factors.codes`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
from gateway.factors import codes
from gateway.handlers.shared.request import company_for, context, runtime, site_name
from gateway.keys import OTHER_WAYS
from gateway.policy.model import CodeLimits
from gateway.runtime import Runtime
from gateway.senders import Sender, SendFailed
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

WRONG_CODE = "That code is not right. Check the latest message and enter its 6 digits."
WRONG_CALLED_CODE = "That code is not right. Enter the 6 digits read out in the latest call."


def wrong_code_text(method: str) -> str:
    """What a wrong code's page says: a phone call has no message to check."""
    return WRONG_CALLED_CODE if method == "voice" else WRONG_CODE


VOID_CODE = "That code was entered wrongly {tries} times and no longer works. Ask for a new code."
NO_CODE = (
    "There is no code waiting for this sign-in: it has expired, been "
    "used, or was not sent. Ask for a new code."
)
SEND_FAILED = "The code could not be sent just now. Try again in a few minutes"


def sender_for(rt: Runtime, method: str) -> Sender | None:
    return {SMS: rt.senders.sms, VOICE: rt.senders.voice, EMAIL: rt.senders.email}[method]


def _key(rt: Runtime) -> bytes:
    return codes.derive_key(rt.secrets.signing_keys[0])


def binding(session: Session) -> str:
    """The pending session's id (it does not change until the second factor is done), hashed."""
    return storage_key(session.id)


def code_limits(request: web.Request, session: Session) -> CodeLimits:
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
    limits = code_limits(request, session)
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
    sender = sender_for(rt, method)
    ip = context(request).client_ip
    code, record = codes.issue(_key(rt), method, binding(session), destination, now, limits)
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
        codes.record_key(method, binding(session)), record, float(record["expires_at"])
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
    key = codes.record_key(method, binding(session))
    now = rt.clock()
    record = await rt.store.take_code(key, now)
    result = codes.check(
        _key(rt),
        record,
        method,
        binding(session),
        destination,
        given,
        now,
        code_limits(request, session),
    )
    if result.record is not None:
        await rt.store.put_code(key, result.record, float(result.record["expires_at"]))
    return result


async def code_waiting(request: web.Request, session: Session, method: str) -> bool:
    """Whether a code for this session and method is waiting in the store."""
    rt = runtime(request)
    key = codes.record_key(method, binding(session))
    return await rt.store.get_code(key, rt.clock()) is not None
