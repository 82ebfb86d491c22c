"""Every failure becomes a page with a status and a next step; never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.errors import GatewayError, StoreDown, UpstreamTimeout, UpstreamUnreachable
from gateway.i18n import N_
from gateway.keys import CONTEXT, RUNTIME
from gateway.protocol import refused_body
from gateway.store import StoreUnavailable

log = logging.getLogger("gateway.errors")


def error_page(request: web.Request, error: GatewayError) -> web.Response:
    pages = request.app[RUNTIME].pages
    ctx = request.get(CONTEXT)
    return pages.render(
        "error.html",
        company=ctx.known_company() if ctx is not None else None,  # the brand stays mid-flow
        status=error.status,
        title=error.title,
        message=error.message,
        next_step=error.next_step,
    )


def error_response(request: web.Request, exc: Exception) -> web.Response:
    """The page for an exception that escaped a handler (web.HTTPException is aiohttp's to
    answer and is not passed here)."""
    refused = refused_body(request)  # the edge cut the body (too large, or stalled): say so,
    if refused is not None:  # not the upstream failure that the cut caused
        return error_page(request, refused)
    if isinstance(exc, GatewayError):
        if isinstance(exc, (UpstreamUnreachable, UpstreamTimeout)):
            request.app[RUNTIME].log_repeats.log(
                logging.WARNING,
                f"upstream {exc.origin} {exc.title}",
                "upstream %s failed: %s %s",
                exc.origin,
                exc.title,
                getattr(exc, "detail", ""),
            )
        return error_page(request, exc)
    if isinstance(exc, StoreUnavailable):
        request.app[RUNTIME].log_repeats.log(logging.ERROR, "store", "store unavailable: %s", exc)
        return error_page(
            request,
            StoreDown(
                N_("The gateway cannot reach its session store, so it cannot check who you are."),
                N_("Try again in a minute. Nothing you sent was passed on."),
            ),
        )
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    return error_page(
        request,
        GatewayError(
            N_("The gateway hit an unexpected problem and did not pass your request on."),
            N_("Try again. If it keeps happening, tell the people who run this site."),
        ),
    )
