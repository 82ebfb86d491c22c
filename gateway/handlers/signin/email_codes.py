"""Enrolling the user's own email address for codes by email: a code sent to it, then typed.
Registers the `email` method; its challenge is code_pages.challenge_pages."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.factors import codes
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.factor_changes import announce_factor
from gateway.handlers.shared.methods import MethodPages, register
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, method_url, rd, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.signin.code_pages import (
    challenge_pages,
    count_answer,
    has_sender,
    verify_page,
    wrong_code,
)
from gateway.handlers.signin.codes import EMAIL, LABELS, check_code, send_code
from gateway.i18n import N_, gettext
from gateway.keys import OTHER_WAYS
from gateway.notices import address_of
from gateway.senders.smtp import is_single_address
from gateway.sessions import Session

log = logging.getLogger("gateway.challenge")

EMAIL_ADDED = N_("An email address was added")
NO_ADDRESS = N_("No email address is known for your account, so a code cannot be emailed to you.")
CHOOSE_ANOTHER = N_("Choose another way below.")
ASK_ADMIN = N_(
    "Ask your company's administrator to add an email address to your account, or to allow "
    "another way to sign in."
)


def _no_address(request: web.Request) -> str:
    """Why no code can be emailed, and what to do instead: another way, if there is one."""
    then = CHOOSE_ANOTHER if request.get(OTHER_WAYS) else ASK_ADMIN
    return f"{gettext(NO_ADDRESS)} {gettext(then)}"


def _address(session: Session) -> str | None:
    """The address codes go to: the user's own, when it is one plain email address."""
    assert session.user is not None
    address = address_of(session.user, session.identity.get("email"))
    return address if address is not None and is_single_address(address) else None


async def email_enrol_get(request: web.Request, session: Session) -> web.StreamResponse:
    address = _address(session)
    if address is None:
        return page(request, "email_unknown.html", session, message=_no_address(request))
    return await verify_page(request, session, EMAIL, address, "enrol")


async def email_enrol_post(
    request: web.Request, session: Session, form: dict[str, str]
) -> web.StreamResponse:
    rt = runtime(request)
    user = session.user
    assert user is not None
    address = _address(session)
    if address is None:
        message = _no_address(request)
        return page(request, "email_unknown.html", session, status=400, message=message)
    if form.get("action") == "send":
        again = form.get("again") == "yes"
        problem = await send_code(request, session, EMAIL, address, again=again)
        if problem is None:
            return see_other(method_url("enrol", EMAIL, rd(request)))
        return await verify_page(
            request, session, EMAIL, address, "enrol", problem=problem[0], status=problem[1]
        )
    enrolled = await rt.store.list_methods(user)
    if EMAIL in enrolled:
        return see_other(gateway_url("challenge", rd(request)))
    result = await check_code(request, session, EMAIL, address, form.get("code", ""))
    count_answer(request, "enrol", EMAIL, result)
    if result.outcome is not codes.Outcome.OK:
        refused = await wrong_code(request, session, EMAIL, result)
        if not isinstance(refused, tuple):
            return refused
        return await verify_page(
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


def _register() -> None:
    challenge_get, challenge_post = challenge_pages(EMAIL)
    register(
        MethodPages(
            name=EMAIL,
            label=LABELS[EMAIL],
            challenge_get=challenge_get,
            challenge_post=challenge_post,
            enrol_get=email_enrol_get,
            enrol_post=email_enrol_post,
            available=has_sender(EMAIL),
        )
    )


_register()
