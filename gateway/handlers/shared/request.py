"""What one request brings every handler: the runtime, the request context, its cookies, the
user's company, and the Visit the sign-in core (gateway.signin) takes, gathered once."""

from __future__ import annotations

from aiohttp import web

from gateway import trust
from gateway.context import RequestContext
from gateway.keys import CONTEXT, RUNTIME, VISIT
from gateway.policy.model import Company
from gateway.runtime import Runtime
from gateway.signin import remember
from gateway.signin.browsers import BROWSER_COOKIE
from gateway.signin.visit import Visit, browser_id_of


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def context(request: web.Request) -> RequestContext:
    return request[CONTEXT]


def cookie_name(ctx: RequestContext, base: str) -> str:
    """`__Host-` pins the cookie to this exact host over TLS; plain HTTP cannot use it."""
    return f"__Host-{base}" if ctx.secure else base


def cookie_value(ctx: RequestContext, name: str) -> str | None:
    for key, value in ctx.cookies:
        if key == name:
            return value
    return None


def company_for(request: web.Request, user: str | None) -> Company | None:
    return context(request).company_for(user)


def site_name(request: web.Request, user: str) -> str:
    """What the user knows this site as: their company's branding, else the application."""
    company = company_for(request, user)
    return company.branding.name if company is not None else context(request).application.name


def visit(request: web.Request) -> Visit:
    """What this request brings to the sign-in core (gateway.signin), gathered once."""
    found = request.get(VISIT)
    if found is None:
        rt = runtime(request)
        ctx = context(request)
        found = request[VISIT] = Visit(
            store=rt.store,
            sessions=rt.sessions,
            clock=rt.clock,
            policy=ctx.policy,
            client_ip=ctx.client_ip,
            browser_id=browser_id_of(cookie_value(ctx, cookie_name(ctx, BROWSER_COOKIE))),
            trust_cookie=cookie_value(ctx, cookie_name(ctx, trust.COOKIE)),
            signing_keys=rt.secrets.signing_keys,
            metrics=rt.metrics,
            request_id=ctx.request_id,
            application=ctx.application.name,
            remember_cookie=cookie_value(ctx, cookie_name(ctx, remember.COOKIE)),
            groups_of=ctx.groups_of,
        )
    return found
