"""/.gateway/admin/api/: the admin pages as JSON (docs/admin-api.yaml is its OpenAPI file).

Authorised like the pages: the gateway session cookie of a company admin whose second factor
was presented in that session, and for changes one made within the last 15 minutes. Changes
also carry the CSRF token from GET /.gateway/admin/api/session in an X-CSRF-Token header.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway import admin as members_of
from gateway import csrf
from gateway.factors.phone import InvalidNumber
from gateway.handlers.admin import actions
from gateway.handlers.admin.access import Admin, AdminRefused, NotAdmin, admin_of, companies_of
from gateway.handlers.shared.csrf import CSRF_COOKIE, attach_csrf_cookie, csrf_token
from gateway.handlers.shared.request import context, cookie_name, cookie_value, runtime
from gateway.handlers.shared.verified import NotSignedIn, fresh
from gateway.policy.model import Company
from gateway.sessions import storage_key

API = "/.gateway/admin/api"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def reply(data: Any, status: int = 200) -> web.Response:
    response = web.json_response(data, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _refusal(exc: AdminRefused | NotSignedIn) -> ApiError:
    if isinstance(exc, NotSignedIn):
        return ApiError(401, "not_signed_in", "Sign in (with your second factor) first.")
    if isinstance(exc, NotAdmin):
        return ApiError(403, "not_admin", "You are not an administrator of this company.")
    return ApiError(
        403,
        "reauth_required",
        "This needs a second factor from the last 15 minutes: re-authenticate, then retry.",
        reauth_url="/.gateway/admin/reauth?rd=%2F.gateway%2Fadmin%2F",
    )


def api(handler: Handler) -> Handler:
    """Refusals and bad requests as JSON errors: {"error": code, "message": text}."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (AdminRefused, NotSignedIn) as exc:
            error = _refusal(exc)
        except ApiError as exc:
            error = exc
        return reply({"error": error.code, "message": error.message, **error.extra}, error.status)

    return wrapper


async def body_of(request: web.Request) -> dict[str, Any]:
    """A change's JSON object, once its CSRF header checks out."""
    ctx = context(request)
    cookie = cookie_value(ctx, cookie_name(ctx, CSRF_COOKIE))
    keys = runtime(request).secrets.signing_keys
    if not csrf.valid(cookie, request.headers.get(CSRF_HEADER), keys):
        raise ApiError(
            403, "csrf_failed", f"Send the csrf_token of GET {API}/session in {CSRF_HEADER}."
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(400, "bad_request", "The body is too large.")
    raw = await request.read()
    if not raw:
        return {}
    if request.content_type != "application/json":
        raise ApiError(400, "bad_request", "Send the body as application/json.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    return data


async def company_json(request: web.Request, company: Company) -> dict[str, Any]:
    since = await members_of.enforced_since(runtime(request).store, company)
    return {
        "id": company.id,
        "name": company.name,
        "enforced": company.enforce_2fa or since is not None,
        "enforced_since": members_of.iso(since),
        "enforced_by_policy_file": company.enforce_2fa,
    }


async def _member(request: web.Request, admin: Admin) -> members_of.Member:
    rt = runtime(request)
    found = await members_of.member(
        rt.store, context(request).policy, admin.company, request.match_info["user"], rt.clock()
    )
    if found is None:
        raise ApiError(404, "not_found", "There is no such member of this company.")
    return found


@api
async def session_get(request: web.Request) -> web.StreamResponse:
    session, companies = await companies_of(request)
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    verified_at = session.verified_at
    is_fresh = fresh(request, session)
    response = reply(
        {
            "user": session.user,
            "companies": [{"id": c.id, "name": c.name} for c in companies],
            "csrf_token": token,
            "verified_at": members_of.iso(verified_at),
            "actions_allowed_until": members_of.iso(
                verified_at + members_of.REAUTH_AFTER if is_fresh and verified_at else None
            ),
        }
    )
    attach_csrf_cookie(response, request, cookies)
    return response


@api
async def company_get(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    return reply(await company_json(request, admin.company))


@api
async def members_get(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    status = request.query.get("status", "")
    if status and status not in members_of.FILTERS:
        raise ApiError(400, "bad_request", f"status must be one of {list(members_of.FILTERS)}.")
    rt = runtime(request)
    found = await members_of.members(rt.store, context(request).policy, admin.company, rt.clock())
    chosen = members_of.select(found, request.query.get("q", ""), status)
    return reply({"count": len(chosen), "members": [m.to_json() for m in chosen]})


@api
async def member_get(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    return reply((await _member(request, admin)).to_json())


@api
async def member_patch(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    data = await body_of(request)
    member = await _member(request, admin)
    unknown = set(data) - {"name", "phone"}
    if unknown or not data:
        raise ApiError(400, "bad_request", 'Send "name", "phone" or both, and nothing else.')
    if any(not isinstance(value, str) for value in data.values()):
        raise ApiError(400, "bad_request", '"name" and "phone" are strings.')
    try:
        name = actions.clean_name(data["name"]) if "name" in data else None
        if "phone" in data:
            await actions.change_phone(request, admin, member.user, data["phone"])
    except (ValueError, InvalidNumber) as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if name is not None:
        await actions.change_name(request, admin, member.user, name)
    return reply((await _member(request, admin)).to_json())


@api
async def reset_post(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    await body_of(request)
    member = await _member(request, admin)
    done = await actions.reset(request, admin, member.user)
    return reply(
        {
            "member": (await _member(request, admin)).to_json(),
            "methods_removed": done.methods,
            "sessions_ended": done.sessions_ended,
            "notified": done.notified,
        }
    )


async def _sessions(request: web.Request, admin: Admin, user: str) -> list[dict[str, Any]]:
    current = storage_key(admin.session.id)
    found = await runtime(request).sessions.active(user)
    return [members_of.session_json(one, current) for one in found]


@api
async def sessions_get(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    member = await _member(request, admin)
    sessions = await _sessions(request, admin, member.user)
    return reply({"member": member.user, "count": len(sessions), "sessions": sessions})


@api
async def session_end_post(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    data = await body_of(request)
    member = await _member(request, admin)
    handle = data.get("id")
    if set(data) != {"id"} or not isinstance(handle, str):
        raise ApiError(400, "bad_request", 'Send {"id": ...}, a session\'s id from the list.')
    ended = await actions.end_session(request, admin, member.user, handle)
    if ended is None:
        raise ApiError(404, "not_found", "The member has no such session (it may have ended).")
    return reply({"ended": members_of.session_json(ended), "sessions_ended": 1})


@api
async def sessions_end_post(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    await body_of(request)
    member = await _member(request, admin)
    ended = await actions.end_sessions(request, admin, member.user)
    return reply(
        {"sessions_ended": ended, "sessions": await _sessions(request, admin, member.user)}
    )


@api
async def browsers_get(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    member = await _member(request, admin)
    remembered = await actions.remembered(request, admin, member.user)
    found = [actions.browser_json(one) for one in remembered]
    return reply({"member": member.user, "count": len(found), "browsers": found})


@api
async def browser_forget_post(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    data = await body_of(request)
    member = await _member(request, admin)
    handle = data.get("id")
    if set(data) != {"id"} or not isinstance(handle, str):
        raise ApiError(400, "bad_request", 'Send {"id": ...}, a remembered browser\'s id.')
    if not await actions.forget_browser(request, admin, member.user, handle):
        raise ApiError(404, "not_found", "The member has no such remembered browser.")
    return reply({"forgotten": handle, "browsers_forgotten": 1})


@api
async def enforce_post(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    data = await body_of(request)
    if data.get("confirm") is not True:
        raise ApiError(
            400, "confirmation_required", 'Send {"confirm": true}: this cannot be undone.'
        )
    new = await actions.enforce(request, admin)
    return reply({**await company_json(request, admin.company), "newly_enforced": new})


def add_routes(router: web.UrlDispatcher) -> None:
    companies = API + "/companies/{company}"
    router.add_get(API + "/session", session_get)
    router.add_get(companies, company_get)
    router.add_get(companies + "/members", members_get)
    router.add_get(companies + "/members/{user}", member_get)
    router.add_patch(companies + "/members/{user}", member_patch)
    router.add_post(companies + "/members/{user}/reset", reset_post)
    router.add_get(companies + "/members/{user}/sessions", sessions_get)
    router.add_post(companies + "/members/{user}/sessions/end", session_end_post)
    router.add_post(companies + "/members/{user}/sessions/end-all", sessions_end_post)
    router.add_get(companies + "/members/{user}/browsers", browsers_get)
    router.add_post(companies + "/members/{user}/browsers/forget", browser_forget_post)
    router.add_post(companies + "/enforce", enforce_post)
