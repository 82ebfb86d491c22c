"""/.gateway/defer: "Remind me later", instead of enrolling, while the company does not enforce
two-step sign-in yet (gateway.signin.deferral)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.handlers.shared.completion import complete
from gateway.handlers.shared.own_methods import ENROL_NOW
from gateway.handlers.shared.pending import pending_post
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.i18n import N_
from gateway.redirects import safe_redirect
from gateway.sessions import DEFERRAL
from gateway.signin import deferral


async def defer(request: web.Request) -> web.StreamResponse:
    """ "Remind me later": allowed only while the company does not enforce 2FA."""
    posted = await pending_post(request)
    if not isinstance(posted, tuple):
        return posted
    _form, session, user = posted
    rt = runtime(request)
    company = company_for(request, user)
    if session.scratch.get(ENROL_NOW):  # "Set up now" on the account page: no putting off
        return see_other(gateway_url("enrol", rd(request)))
    groups = context(request).groups_of(user)
    if company is None or not await deferral.may_defer(company, rt.store, user, groups):
        raise Forbidden(
            N_("Your company requires two-step sign-in, so it cannot be put off."),
            N_("Go back and set it up now."),
        )
    if await rt.store.list_methods(user):
        return see_other(gateway_url("challenge", rd(request)))
    await deferral.grant(visit(request), user, company)
    return await complete(request, session, safe_redirect(request.query.get("rd")), via=DEFERRAL)
