"""Every failure becomes a page with a status and a next step; never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import GatewayError, StoreDown, UpstreamTimeout, UpstreamUnreachable
from gateway.keys import RUNTIME
from gateway.store import StoreUnavailable

log = logging.getLogger("gateway.errors")


def error_page(request: web.Request, error: GatewayError) -> web.Response:
    pages = request.app[RUNTIME].pages
    return pages.render(
        "error.html",
        status=error.status,
        title=error.title,
        message=error.message,
        next_step=error.next_step,
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        if isinstance(error, (UpstreamUnreachable, UpstreamTimeout)):
            log.warning(
                "upstream %s failed: %s %s", error.origin, error.title, getattr(error, "detail", "")
            )
        return error_page(request, error)
    except StoreUnavailable as exc:
        log.error("store unavailable: %s", exc)
        return error_page(
            request,
            StoreDown(
                "The gateway cannot reach its session store, so it cannot check who you are.",
                "Try again in a minute. Nothing you sent was passed on.",
            ),
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_page(
            request,
            GatewayError(
                "The gateway hit an unexpected problem and did not pass your request on.",
                "Try again. If it keeps happening, tell the people who run this site.",
            ),
        )
