"""Codes by text message, phone call and email: what the message says, sending one (rationed,
sender failures told plainly) and checking one. Sends are counted under three keys
(`gateway.factors.codes.send_keys`): a pause per sign-in and method, an hourly cap per user,
method and destination, and a larger hourly cap per user over everything. The pages that use
them: code_pages.py (typing a code, the challenge), phone_codes.py and email_codes.py
(enrolment), phone_confirm.py.

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
from gateway.store import Store

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


SENT_AGAIN = "code_sent_again"  # session scratch: the method "Send again" just sent, shown once


def sent_again_text(method: str, to: str) -> str:
    """The confirmation after "Send again": a new code replaces the one before it (a code is
    kept per sign-in and method, so the earlier code of this method no longer works)."""
    if method == VOICE:
        return (
            f"We called {to} again and read out a new code. Enter that code: codes read out "
            "before it no longer work."
        )
    verb = "texted" if method == SMS else "emailed"
    return f"A new code was {verb} to {to}. Enter that code: codes sent before it no longer work."


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
    request: web.Request,
    session: Session,
    method: str,
    destination: str,
    *,
    again: bool = False,
) -> tuple[str, int] | None:
    """Send a new code; None when it went out, else (what to tell the user, status). A code
    that could not be sent is neither stored nor counted against the user's sends. `again`:
    asked for with "Send again", so the next page confirms that a new code went out."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    now = rt.clock()
    limits = code_limits(request, session)
    keys = codes.send_keys(_key(rt), user, method, destination, binding(session))
    refused = await _reserve(rt.store, keys, now, limits)
    if refused is not None:
        return await _refusal(request, session, method, destination, keys, refused, now)
    problem = await _send_reserved(request, session, method, destination, keys, now, limits)
    if problem is None and again:
        session.scratch[SENT_AGAIN] = method
        await rt.sessions.save(session)
    return problem


async def _reserve(
    store: Store, keys: codes.SendKeys, now: float, limits: CodeLimits
) -> str | None:
    """Count a send under each of its keys; None when every one took it, else the refusing
    key's name (the sends counted before it are given back). Each reservation is atomic, so
    racing requests cannot pass the pause of one sign-in or the caps."""
    every = codes.all_sends_limit(limits)
    pause = limits.resend_after.total_seconds()
    taken: list[str] = []
    for name, key, between, per_hour in (
        ("pause", keys.pause, pause, every),
        ("cap", keys.cap, 0.0, limits.sends_per_hour),
        ("all", keys.everything, 0.0, every),
    ):
        if not await store.reserve_send(key, now, between, per_hour):
            for earlier in taken:
                await store.release_send(earlier, now)
            return name
        taken.append(key)
    return None


async def _release(store: Store, keys: codes.SendKeys, now: float) -> None:
    for key in (keys.pause, keys.cap, keys.everything):
        await store.release_send(key, now)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _ago(seconds: float) -> str:
    whole = int(seconds)
    if whole < 1:
        return "a moment ago"
    if whole < 120:
        return _plural(whole, "second") + " ago"
    return _plural(whole // 60, "minute") + " ago"


def _still_works(method: str, to: str, ago: str) -> str:
    if method == VOICE:
        return f"The code read out in our call to {to} {ago} still works: enter it below."
    verb = "texted" if method == SMS else "emailed"
    return f"The code we {verb} to {to} {ago} still works: enter it below."


async def _refusal(
    request: web.Request,
    session: Session,
    method: str,
    destination: str,
    keys: codes.SendKeys,
    refused: str,
    now: float,
) -> tuple[str, int]:
    """Why no code was sent, when the person may ask again, and what to do meanwhile: a code
    that is still waiting is to be entered (the page then shows the code field)."""
    store = runtime(request).store
    limits = code_limits(request, session)
    to = codes.describe(method, destination)
    waiting = await code_waiting(request, session, method)
    another = "another call" if method == VOICE else "another"
    if refused == "pause":
        sends = await store.sends_since(keys.pause, now - codes.HOUR)
        seconds = max(codes.pause_wait(sends, now, limits), 1)  # refused even if times look clear
        later = f"in {_plural(seconds, 'second')}"
        if not waiting:
            return f"You can ask for a new code {later}. Then press “{SEND_LABELS[method]}”.", 429
        ago = _ago(now - max(sends, default=now))
        return f"{_still_works(method, to, ago)} You can ask for {another} {later}.", 429
    if refused == "cap":
        count = limits.sends_per_hour
        sends = await store.sends_since(keys.cap, now - codes.HOUR)
        have = "has" if count == 1 else "have"
        done = {
            SMS: f"{_plural(count, 'code')} {have} been texted to {to}",
            VOICE: f"{_plural(count, 'call')} {have} been made to {to}",
            EMAIL: f"{_plural(count, 'code')} {have} been emailed to {to}",
        }[method]
        said = f"{done} in the last hour, the most we send."
    else:
        count = codes.all_sends_limit(limits)
        sends = await store.sends_since(keys.everything, now - codes.HOUR)
        said = (
            f"{count} codes have been sent to you in the last hour, by every way together, "
            "the most we send."
        )
    minutes = (max(codes.cap_wait(sends, now, count, limits), 1) + 59) // 60
    meanwhile = " The latest code still works: enter it below." if waiting else ""
    other = ", or choose another way below." if request.get(OTHER_WAYS) else "."
    return (
        f"{said}{meanwhile} You can ask for {another} in {_plural(minutes, 'minute')}{other}",
        429,
    )


async def _send_reserved(
    request: web.Request,
    session: Session,
    method: str,
    destination: str,
    keys: codes.SendKeys,
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
        await _release(rt.store, keys, now)
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
