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
from gateway.handlers.signin.code_words import (  # the pages import them from here
    EMAIL as EMAIL,
)
from gateway.handlers.signin.code_words import (
    HEADINGS as HEADINGS,
)
from gateway.handlers.signin.code_words import (
    LABELS as LABELS,
)
from gateway.handlers.signin.code_words import (
    NO_CODE as NO_CODE,
)
from gateway.handlers.signin.code_words import (
    SEND_LABELS as SEND_LABELS,
)
from gateway.handlers.signin.code_words import (
    SMS as SMS,
)
from gateway.handlers.signin.code_words import (
    VOICE as VOICE,
)
from gateway.handlers.signin.code_words import (
    WRONG_CALLED_CODE as WRONG_CALLED_CODE,
)
from gateway.handlers.signin.code_words import (
    WRONG_CODE as WRONG_CODE,
)
from gateway.handlers.signin.code_words import (
    ago as ago,
)
from gateway.handlers.signin.code_words import (
    ask_again as ask_again,
)
from gateway.handlers.signin.code_words import (
    cap_reached as cap_reached,
)
from gateway.handlers.signin.code_words import (
    messages as messages,
)
from gateway.handlers.signin.code_words import (
    sent_again_text as sent_again_text,
)
from gateway.handlers.signin.code_words import (
    still_works as still_works,
)
from gateway.handlers.signin.code_words import (
    void_code_text as void_code_text,
)
from gateway.handlers.signin.code_words import (
    wrong_code_text as wrong_code_text,
)
from gateway.i18n import N_, gettext, ngettext
from gateway.keys import OTHER_WAYS
from gateway.policy.model import CodeLimits
from gateway.runtime import Runtime
from gateway.senders import Sender, SendFailed
from gateway.sessions import Session, storage_key
from gateway.store import Store

log = logging.getLogger("gateway.challenge")


PHONE_METHODS = (SMS, VOICE)
SENT_AGAIN = "code_sent_again"  # session scratch: the method "Send again" just sent, shown once


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
    if refused == "pause":
        sends = await store.sends_since(keys.pause, now - codes.HOUR)
        seconds = max(codes.pause_wait(sends, now, limits), 1)  # refused even if times look clear
        if not waiting:
            return ngettext(
                "You can ask for a new code in %(num)s second. Then press “%(button)s”.",
                "You can ask for a new code in %(num)s seconds. Then press “%(button)s”.",
                seconds,
                button=gettext(SEND_LABELS[method]),
            ), 429
        since = ago(now - max(sends, default=now))
        if method == VOICE:
            later = ngettext(
                "You can ask for another call in %(num)s second.",
                "You can ask for another call in %(num)s seconds.",
                seconds,
            )
        else:
            later = ngettext(
                "You can ask for another in %(num)s second.",
                "You can ask for another in %(num)s seconds.",
                seconds,
            )
        return f"{still_works(method, to, since)} {later}", 429
    if refused == "cap":
        count = limits.sends_per_hour
        sends = await store.sends_since(keys.cap, now - codes.HOUR)
        said = cap_reached(method, count, to)
    else:
        count = codes.all_sends_limit(limits)
        sends = await store.sends_since(keys.everything, now - codes.HOUR)
        said = ngettext(
            "%(num)s code has been sent to you in the last hour, by every way together, the "
            "most we send.",
            "%(num)s codes have been sent to you in the last hour, by every way together, the "
            "most we send.",
            count,
        )
    minutes = (max(codes.cap_wait(sends, now, count, limits), 1) + 59) // 60
    meanwhile = " " + gettext("The latest code still works: enter it below.") if waiting else ""
    return f"{said}{meanwhile} {ask_again(method, minutes, bool(request.get(OTHER_WAYS)))}", 429


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
    subject, text = messages(method, code, site_name(request, user), limits)
    try:
        if sender is None:
            raise SendFailed(f"no sender is configured for {method}")
        await _deliver(sender, method, destination, subject, text)
    except SendFailed as exc:
        await _release(rt.store, keys, now)
        log.warning("the %s code for %s could not be sent: %s", method, user, exc)
        audit("code_send_failed", method=method, user=user, ip=ip, reason=str(exc))
        rt.metrics.count(rt.metrics.codes_sent, method, "failed")
        if request.get(OTHER_WAYS):
            failed = N_(
                "The code could not be sent just now. Try again in a few minutes or choose "
                "another way below."
            )
        else:
            failed = N_("The code could not be sent just now. Try again in a few minutes.")
        return gettext(failed), 503
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
