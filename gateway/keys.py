"""Every AppKey and RequestKey in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.regulation import Lockout
    from gateway.runtime import Runtime
    from gateway.signin.visit import Visit

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
CONTEXT: web.RequestKey[RequestContext] = web.RequestKey("context")
# the other second-factor methods offered on this page ("try another way"): name, label, url
OTHER_WAYS: web.RequestKey[list[dict[str, str]]] = web.RequestKey("other_ways")
# a second-factor lockout found for this request (see gateway.regulation)
LOCKOUT: web.RequestKey[Lockout] = web.RequestKey("lockout")
VISIT: web.RequestKey[Visit] = web.RequestKey("visit")  # gateway.handlers.shared.request.visit
