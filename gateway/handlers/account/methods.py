"""/.gateway/account, "Two-step sign-in": the signed-in person's own ways to sign in, each with
when it was added and last used; add a backup method (the enrolment page, for a signed-in user:
signin/second_factor.py), remove one (never the last usable one), choose the one asked for
first. A change needs a second factor from the last 15 minutes (shared/factor_changes.stale).
A person who put enrolment off ("Remind me later") sets it up from here when they choose."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.audit import audit
from gateway.factors import codes, recovery, webauthn
from gateway.factors.passkey_records import WEBAUTHN, record_of
from gateway.handlers.shared.attempts import busy
from gateway.handlers.shared.cookies import load_session, set_session_cookie
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor, stale
from gateway.handlers.shared.methods import REGISTRY, allowed, enrolled_alone, offered
from gateway.handlers.shared.own_methods import (
    ACCOUNT,
    ACCOUNT_DONE,
    ENROL_NOW,
    PASSKEYS,
    own_default,
)
from gateway.handlers.shared.pages import page, when
from gateway.handlers.shared.redirects import gateway_url, method_url, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.handlers.shared.verified import fresh, step_down
from gateway.i18n import N_, gettext, ngettext
from gateway.sessions import Level, Session
from gateway.signin import methods
from gateway.signin.attempts import one_at_a_time
from gateway.signin.methods import OWN_DEFAULT, RECOVERY, used_fact

log = logging.getLogger("gateway.challenge")

DONE = ACCOUNT_DONE
LAST_WAY = N_(
    "That is your only way to confirm it is you when you sign in, so it cannot be removed. "
    "Add another method first, then remove this one."
)


async def _signed_in(request: web.Request) -> Session | web.StreamResponse:
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", ACCOUNT))
    return session


def _destination(request: web.Request, user: str, record: dict[str, Any]) -> str | None:
    """The phone number or address a code method's record goes to."""
    cipher = runtime(request).secrets.cipher
    if "phone" in record:
        return cipher.decrypt(str(record["phone"]), f"phone:{user}")
    if "address" in record:
        return cipher.decrypt(str(record["address"]), f"email:{user}")
    return None


def _detail(request: web.Request, user: str, method: str, record: dict[str, Any]) -> str | None:
    """Which phone or address a code method goes to, masked."""
    destination = _destination(request, user, record)
    if destination is None:
        return None
    described = codes.describe(method, destination)
    return described if "@" in destination else described[:1].upper() + described[1:]


async def _rows(
    request: web.Request, user: str, enrolled: list[str], chosen: str | None
) -> list[dict[str, Any]]:
    """One row per method the policy allows (recovery codes apart), in policy order."""
    rt = runtime(request)
    company = company_for(request, user)
    now = rt.clock()
    record_of_user = await rt.store.get_user(user)
    used = record_of_user.facts if record_of_user is not None else {}
    ways = methods.sign_in_ways(enrolled, company, offered(rt))
    first = methods.preferred(ways, company, chosen)
    rows = []
    for name in allowed(company, rt):
        if name == RECOVERY or name not in REGISTRY or name not in enrolled_alone():
            continue
        row: dict[str, Any] = {
            "name": name,
            "label": REGISTRY[name].label,
            "set_up": False,
            "default": False,
            "removable": False,
            "detail": None,
            "added": None,
            "last_used": None,
            "manage_url": None,
            "add_url": None,
        }
        record = await rt.store.get_enrolment(user, name) if name in enrolled else None
        if record is None:
            row["add_url"] = PASSKEYS if name == WEBAUTHN else method_url("enrol", name, ACCOUNT)
            rows.append(row)
            continue
        row["set_up"] = True
        row["default"] = name == first
        row["removable"] = name != WEBAUTHN and methods.may_remove(
            name, enrolled, company, offered(rt)
        )
        last = used.get(used_fact(name))
        row["last_used"] = when(float(last), now) if isinstance(last, int | float) else None
        if name == WEBAUTHN:
            credentials = webauthn.credentials_of(await record_of(rt.store, user))
            count = len(credentials)
            row["detail"] = ngettext("%(num)s passkey", "%(num)s passkeys", count)
            row["added"] = when(min((c.created for c in credentials), default=None), now)
            row["manage_url"] = PASSKEYS
        else:
            created = record.get("created")
            row["added"] = when(float(created), now) if isinstance(created, int | float) else None
            row["detail"] = _detail(request, user, name, record)
        rows.append(row)
    return rows


async def account_get(request: web.Request) -> web.StreamResponse:
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    return await _render(request, found)


async def _render(
    request: web.Request, session: Session, error: str | None = None, status: int = 200
) -> web.StreamResponse:
    user = session.user
    assert user is not None
    rt = runtime(request)
    company = company_for(request, user)
    enrolled = await rt.store.list_methods(user)
    ways = methods.sign_in_ways(enrolled, company, offered(rt))
    done = session.scratch.pop(DONE, None)
    if done is not None:
        await rt.sessions.save(session)
    recovery_codes = None
    if ways and RECOVERY in allowed(company, rt):
        record = await rt.store.get_enrolment(user, RECOVERY)
        made = record.get("created") if record else None
        recovery_codes = {
            "set_up": record is not None,
            "remaining": recovery.remaining(record),
            "added": when(float(made), rt.clock()) if isinstance(made, int | float) else None,
            "url": gateway_url("recovery", ACCOUNT),
        }
    return page(
        request,
        "account.html",
        session,
        status=status,
        error=error,
        done=str(done) if done else None,
        rows=await _rows(request, user, enrolled, await own_default(rt.store, user)),
        ways=ways,
        no_longer_offered=bool(enrolled) and not ways,
        recovery_codes=recovery_codes,
        may_change=fresh(request, session),
        scripts=True,  # static/times.js: the times in the browser's own zone
        confirm_url=gateway_url("reauth", ACCOUNT),
    )


async def _change(
    request: web.Request,
) -> tuple[dict[str, str], Session, str] | web.StreamResponse:
    """A change posted from the page: its form, once the CSRF token checks out, for a verified
    session with a recent second factor; else where to go."""
    form = await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    stale(request, found)  # a POST is refused, not redirected
    assert found.user is not None
    return form, found, found.user


async def _done(request: web.Request, session: Session, message: str) -> web.StreamResponse:
    session.scratch[DONE] = message
    await runtime(request).sessions.save(session)
    return see_other(ACCOUNT)


async def remove_post(request: web.Request) -> web.StreamResponse:
    """Remove one method (a code method or the authenticator app; passkeys and recovery codes
    have their own pages), unless it is the last way the person can sign in."""
    changing = await _change(request)
    if not isinstance(changing, tuple):
        return changing
    form, session, user = changing
    rt = runtime(request)
    method = form.get("method", "")
    if method in (WEBAUTHN, RECOVERY) or method not in REGISTRY:
        return see_other(ACCOUNT)
    label = REGISTRY[method].label
    async with one_at_a_time(visit(request), user) as mine:  # two removals at once: one waits
        if not mine:
            return busy(request, ACCOUNT, N_("Back to two-step sign-in"))
        enrolled = await rt.store.list_methods(user)
        if method not in enrolled:
            return await _done(
                request, session, gettext("%(method)s was already removed.", method=gettext(label))
            )
        company = company_for(request, user)
        if not methods.may_remove(method, enrolled, company, offered(rt)):
            return await _render(request, session, error=LAST_WAY, status=409)
        twin = await _same_phone(request, user, method)
        await rt.store.delete_enrolment(user, method)
    if await own_default(rt.store, user) == method:
        company_id = company.id if company else None
        await rt.store.note_user(user, company_id, rt.clock(), {OWN_DEFAULT: None})
    log.info("%s removed for %s from %s", method, user, context(request).client_ip)
    await announce_factor(
        request,
        session,
        "factor_removed",
        method,
        gettext("%(method)s was removed", method=gettext(label)),
    )
    if twin is not None:  # a lost phone: its other method still reaches it
        return await _done(
            request,
            session,
            gettext(
                "%(method)s was removed. %(twin)s to the same number still works: remove it too "
                "if that phone is lost.",
                method=gettext(label),
                twin=gettext(REGISTRY[twin].label),
            ),
        )
    return await _done(request, session, gettext("%(method)s was removed.", method=gettext(label)))


async def _same_phone(request: web.Request, user: str, method: str) -> str | None:
    """The other phone method (texts, calls) when it goes to the same number as `method`."""
    if method not in ("sms", "voice"):
        return None
    other = "voice" if method == "sms" else "sms"
    store = runtime(request).store
    mine, theirs = await store.get_enrolment(user, method), await store.get_enrolment(user, other)
    if mine is None or theirs is None:
        return None
    same = _destination(request, user, mine) == _destination(request, user, theirs)
    return other if same else None


async def default_post(request: web.Request) -> web.StreamResponse:
    """Choose the method the challenge page asks for first."""
    changing = await _change(request)
    if not isinstance(changing, tuple):
        return changing
    form, session, user = changing
    rt = runtime(request)
    method = form.get("method", "")
    company = company_for(request, user)
    ways = methods.sign_in_ways(await rt.store.list_methods(user), company, offered(rt))
    if method not in ways:
        return see_other(ACCOUNT)
    company_id = company.id if company else None
    await rt.store.note_user(user, company_id, rt.clock(), {OWN_DEFAULT: method})
    audit("default_method", method=method, user=user, ip=context(request).client_ip)
    return await _done(
        request,
        session,
        gettext(
            "%(method)s is now asked for first when you sign in.",
            method=gettext(REGISTRY[method].label),
        ),
    )


async def start_post(request: web.Request) -> web.StreamResponse:
    """ "Set up two-step sign-in now", for a person who put it off: the session steps down to
    the first factor and goes to the enrolment, as at a sign-in (no other factor to ask for)."""
    await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    user = found.user
    assert user is not None
    rt = runtime(request)
    enrolled = await rt.store.list_methods(user)
    if methods.sign_in_ways(enrolled, company_for(request, user), offered(rt)) or enrolled:
        return see_other(ACCOUNT)  # set up already: adding one needs a factor (the page's links)
    found.scratch[ENROL_NOW] = True  # no "Remind me later" on the way: they chose now
    session = await step_down(request, found)
    response = see_other(gateway_url("enrol", ACCOUNT))
    set_session_cookie(response, request, session)
    return response
