"""The user's own recovery codes: /.gateway/recovery shows a new set once (right after the first
enrolment, or when the user makes new ones, which needs a recent second factor) and otherwise
how many remain; /.gateway/recovery/used follows a sign-in with a code. Signing in with a code:
signin/recovery.py.

A new set can be kept without JavaScript: a download link whose `data:` URL holds the file (the
codes are popped from the session before the page, so no later request could serve them), and a
print stylesheet that prints only the codes. A small script (static/recovery.js, allowed by the
page's CSP as the gateway's own file) adds "Copy" and "Print" buttons. "Continue" is a form that
posts back here and is sent on to `rd`."""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.audit import audit
from gateway.errors import NotFound
from gateway.factors import recovery
from gateway.factors.recovery import RECOVERY
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor, stale
from gateway.handlers.shared.methods import allowed
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime, site_name
from gateway.i18n import N_, date_words, gettext, ngettext
from gateway.offload import off_loop
from gateway.sessions import Level, Session

log = logging.getLogger("gateway.challenge")

FEW = 3  # this many codes left or fewer: the user is told to make new ones
REGENERATED = N_("New recovery codes were made (the old ones no longer work)")
CONTINUE_FIELD = "continue"  # posted by the pages' "Continue" button: on to `rd`, nothing else
# What a person loses when they need a code, in their words, by the methods they have set up.
WAYS = {
    "totp": N_("your authenticator app"),
    "webauthn": N_("your passkey"),
    "sms": N_("your phone"),
    "voice": N_("your phone"),
    "email": N_("your email"),
}
OTHER_WAYS = N_("your other ways to sign in")


def remaining_text(count: int) -> str:
    if count == 0:
        return gettext("No recovery codes remain.")
    return ngettext("%(num)s code remains.", "%(num)s codes remain.", count)


def ways_text(methods: list[str]) -> str:
    """What the user would have lost access to when they need a code: "your passkey", or "your
    other ways to sign in (your authenticator app and your email)"; never a method they lack."""
    named = list(dict.fromkeys(WAYS.get(method, "") for method in methods if method != RECOVERY))
    if not named or "" in named:
        return gettext(OTHER_WAYS)
    said = [gettext(way) for way in named]
    if len(said) == 1:
        return said[0]
    return gettext(
        "%(ways)s (%(some)s and %(last)s)",
        ways=gettext(OTHER_WAYS),
        some=", ".join(said[:-1]),
        last=said[-1],
    )


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")


def _day(moment: float) -> dict[str, str]:
    at = datetime.fromtimestamp(moment, UTC)
    return {"iso": at.strftime("%Y-%m-%d"), "text": date_words(at)}


def _made_on(record: dict[str, Any]) -> dict[str, str] | None:
    """The day a stored set was made, when its record says so sensibly."""
    created = record.get("created")
    if isinstance(created, bool) or not isinstance(created, int | float) or created <= 0:
        return None
    try:
        return _day(created)
    except (OverflowError, OSError, ValueError):
        return None


def download(site: str, user: str, made: float, codes: list[str], ways: str) -> dict[str, str]:
    """The codes as a text file for a download link: its name and its `data:` URL."""
    day = _day(made)
    lines = [
        gettext("Recovery codes for %(site)s", site=site),
        "",
        gettext("Account: %(user)s", user=user),
        gettext("Made on: %(day)s (%(iso)s)", day=day["text"], iso=day["iso"]),
        "",
        gettext(
            "If you lose access to %(ways)s, sign in with one of these codes instead:", ways=ways
        ),
        gettext('choose "A recovery code" under "Try another way". Each code works only once.'),
        "",
        *(f"{number:>2}. {code}" for number, code in enumerate(codes, start=1)),
        "",
        gettext(
            "Keep this file somewhere safe. Anyone with a code and your password can sign in "
            "as you."
        ),
        gettext("Making new codes stops all of these from working."),
        "",
    ]
    slug = _slug(site)
    return {
        "name": f"recovery-codes-{slug}.txt" if slug else "recovery-codes.txt",
        "url": "data:text/plain;charset=utf-8," + quote("\r\n".join(lines), safe=""),
    }


async def _verified(request: web.Request) -> tuple[Session, list[str]] | web.StreamResponse:
    """The verified session of a user whose company allows recovery codes and who has a real
    second factor to recover (not a deferral), with those factors; else where to go."""
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", rd(request)))
    rt = runtime(request)
    if RECOVERY not in allowed(company_for(request, session.user), rt):
        raise NotFound(N_("There is no gateway page at this address."))
    methods = [m for m in await rt.store.list_methods(session.user) if m != RECOVERY]
    if not methods:
        raise NotFound(
            N_("Recovery codes come with two-step sign-in, which is not set up for you yet."),
            N_("Set up two-step sign-in first; your recovery codes are shown right after."),
        )
    return session, methods


async def _new_codes(request: web.Request, user: str) -> list[str]:
    """A new set stored (the old one, if any, void at once); its codes to show once."""
    rt = runtime(request)
    made = await off_loop(recovery.generate, rt.clock())
    await rt.store.put_enrolment(user, RECOVERY, made.record)
    return made.codes


def _codes_page(
    request: web.Request, session: Session, methods: list[str], **extra: Any
) -> web.Response:
    return page(request, "recovery_codes.html", session, ways=ways_text(methods), **extra)


def _shown(
    request: web.Request, session: Session, methods: list[str], codes: list[str], replaced: bool
) -> web.Response:
    """A new set, shown this once: with its download, and whether it replaced an old set."""
    user = session.user
    assert user is not None
    made = runtime(request).clock()
    site = site_name(request, user)
    ways = ways_text(methods)
    return _codes_page(
        request,
        session,
        methods,
        codes=codes,
        replaced=replaced,
        site=site,
        made=_day(made),
        download=download(site, user, made, codes, ways),
        scripts=True,  # static/recovery.js: the copy and print buttons
    )


async def codes_get(request: web.Request) -> web.StreamResponse:
    """New codes once (right after they were made), else how many remain and "make new ones"."""
    found = await _verified(request)
    if not isinstance(found, tuple):
        return found
    session, methods = found
    user = session.user
    assert user is not None
    rt = runtime(request)
    fresh = session.scratch.pop(RECOVERY, None)
    if isinstance(fresh, dict) and isinstance(fresh.get("codes"), list):
        await rt.sessions.save(session)  # shown once: gone from the session before the page
        codes = [str(c) for c in fresh["codes"]]
        return _shown(request, session, methods, codes, replaced=True)
    refused = stale(request, session)  # making codes (even the first) changes how one signs in
    if refused is not None:
        return refused
    record = await rt.store.get_enrolment(user, RECOVERY)
    if record is None:  # the first enrolment has just happened (or codes were allowed since)
        codes = await _new_codes(request, user)
        log.info("recovery codes made for %s", user)
        audit("factor_added", method=RECOVERY, user=user, ip=context(request).client_ip)
        return _shown(request, session, methods, codes, replaced=False)
    count = recovery.remaining(record)
    return _codes_page(
        request,
        session,
        methods,
        codes=None,
        remaining=count,
        remaining_text=remaining_text(count),
        few=count <= FEW,
        made=_made_on(record),
    )


async def codes_post(request: web.Request) -> web.StreamResponse:
    """ "Make new codes": the old ones stop working, the new ones are shown once. Or, from the
    pages' "Continue" button, on to where the person was going."""
    form = await require_csrf(request)
    if CONTINUE_FIELD in form:
        return see_other(rd(request))
    found = await _verified(request)
    if not isinstance(found, tuple):
        return found
    session, _methods = found
    refused = stale(request, session)
    if refused is not None:
        return refused
    user = session.user
    assert user is not None
    rt = runtime(request)
    session.scratch[RECOVERY] = {"codes": await _new_codes(request, user)}
    await rt.sessions.save(session)
    log.info("recovery codes replaced for %s", user)
    await announce_factor(request, session, "recovery_codes_replaced", RECOVERY, REGENERATED)
    return see_other(gateway_url("recovery", rd(request)))


async def used_get(request: web.Request) -> web.StreamResponse:
    """After signing in with a recovery code: how many remain, and on to the application."""
    found = await _verified(request)
    if not isinstance(found, tuple):
        return found
    session, methods = found
    if session.second_factor != RECOVERY:
        return see_other(rd(request))
    assert session.user is not None
    count = recovery.remaining(await runtime(request).store.get_enrolment(session.user, RECOVERY))
    return page(
        request,
        "recovery_used.html",
        session,
        remaining=count,
        remaining_text=remaining_text(count),
        few=count <= FEW,
        ways=ways_text(methods),
    )
