"""The admin JSON API against a real gateway: authorised like the pages, every answer checked
against docs/admin-api.yaml, and every change audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.clock import FixedClock
from tests.admin import openapi
from tests.admin.helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    Client,
    audit_events,
    browser,
    capture_audit,
    password,
    runtime,
    seen,
    sign_in,
)

API = "/.gateway/admin/api"
ACME = "/companies/{company}"
MEMBERS = ACME + "/members"
MEMBER = MEMBERS + "/{user}"


def url(template: str, **values: str) -> str:
    return API + template.format(**values)


async def call(
    client: Any,
    method: str,
    template: str,
    status: int,
    json: Any = None,
    token: str = "",
    **values: str,
) -> Any:
    """One API call; its answer must have `status` and match the document."""
    headers = {"X-CSRF-Token": token} if token else {}
    answer = await client.request(method, url(template, **values), json=json, headers=headers)
    body = await answer.json()
    assert answer.status == status, body
    assert answer.headers["Cache-Control"] == "no-store"
    openapi.check(template, method, status, body)
    return body


async def admin_token(client: Any) -> str:
    session = await call(client, "GET", "/session", 200)
    return str(session["csrf_token"])


def test_every_api_route_is_documented_and_every_documented_one_exists(tmp_path: Path) -> None:
    """The routes under /.gateway/admin/api and the document's paths are the same set."""
    from gateway.app import build_runtime
    from gateway.policy import Policy
    from gateway.settings import settings_from_dict
    from tests.support import settings_dict

    settings = settings_from_dict(
        settings_dict(
            tmp_path,
            {
                "a": {
                    "upstream": "http://127.0.0.1:1",
                    "hosts": ["*"],
                    "identity": "portal",
                    "portal": {"users_file": str(tmp_path / "u.yaml")},
                }
            },
        ),
        source=tmp_path / "g.yaml",
    )
    (tmp_path / "u.yaml").write_text("users: {}\n")
    app = create_app(build_runtime(settings, Policy.EMPTY))
    routes = {
        (route.method.lower(), route.resource.canonical.removeprefix(API))
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API)
        and route.method != "HEAD"
    }
    documented = {
        (method, path)
        for path, operations in openapi.document()["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert routes == documented
    assert openapi.document()["openapi"].startswith("3.1")


async def test_not_signed_in_and_not_admin_are_refused(client: Client, clock: FixedClock) -> None:
    """401 without a verified session; 403 for a member who is not an admin, and for an admin
    of another company."""
    await call(client, "GET", "/session", 401)
    await call(client, "GET", MEMBERS, 401, company="acme")
    await sign_in(client, CAROL, clock)
    body = await call(client, "GET", "/session", 403)
    assert body["error"] == "not_admin"
    await call(client, "GET", MEMBERS, 403, company="acme")
    async with browser(client) as bob:
        await sign_in(bob, BOB, clock)
        await call(bob, "GET", MEMBERS, 403, company="acme")
        await call(bob, "GET", ACME, 403, company="acme")
        token = await admin_token(bob)
        await call(bob, "POST", ACME + "/enforce", 403, {"confirm": True}, token, company="acme")
    assert await runtime(client).store.enforced_since("acme") is None


async def test_an_admin_reads_their_company_and_members_only(
    client: Client, clock: FixedClock
) -> None:
    """The session, the company, the member list (searched, filtered) and one member; another
    company's member is not found."""
    await seen(client, CAROL, clock)
    await seen(client, BOB, clock)
    await sign_in(client, ALICE, clock)
    session = await call(client, "GET", "/session", 200)
    assert session["user"] == ALICE and session["companies"] == [
        {"id": "acme", "name": "Acme Corporation"}
    ]
    assert session["actions_allowed_until"] is not None
    company = await call(client, "GET", ACME, 200, company="acme")
    assert company == {
        "id": "acme",
        "name": "Acme Corporation",
        "enforced": False,
        "enforced_since": None,
        "enforced_by_policy_file": False,
    }
    listed = await call(client, "GET", MEMBERS, 200, company="acme")
    assert [m["user"] for m in listed["members"]] == [ALICE, CAROL, DAVE]
    alice = listed["members"][0]
    assert alice["admin"] and alice["status"] == "enrolled" and alice["methods"] == ["totp"]
    assert alice["last_2fa_from"] == "127.0.0.1" and alice["last_2fa"].startswith("2027-01-15T08:")
    dave = listed["members"][2]
    assert (
        dave["listed_in_policy"] and dave["status"] == "not_enrolled" and dave["first_seen"] is None
    )
    answer = await client.get(url(MEMBERS, company="acme"), params={"q": "car"})
    assert [m["user"] for m in (await answer.json())["members"]] == [CAROL]
    answer = await client.get(url(MEMBERS, company="acme"), params={"status": "not_enrolled"})
    assert [m["user"] for m in (await answer.json())["members"]] == [DAVE]
    bad = await client.get(url(MEMBERS, company="acme"), params={"status": "everyone"})
    assert bad.status == 400
    openapi.check(MEMBERS, "GET", 400, await bad.json())
    await call(client, "GET", MEMBER, 200, company="acme", user=CAROL)
    body = await call(client, "GET", MEMBER, 404, company="acme", user=BOB)
    assert body["error"] == "not_found" and BOB not in str(body)


async def test_reset_through_the_api(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A reset needs the CSRF header; it removes Carol's factors, ends her sessions, is audited,
    and her next sign-in enrols again."""
    capture_audit(caplog)
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    refused = await call(client, "POST", MEMBER + "/reset", 403, company="acme", user=CAROL)
    assert refused["error"] == "csrf_failed"
    assert await runtime(client).store.list_methods(CAROL) == ["totp"]
    token = await admin_token(client)
    done = await call(
        client, "POST", MEMBER + "/reset", 200, token=token, company="acme", user=CAROL
    )
    assert done["methods_removed"] == ["totp"] and done["sessions_ended"] == 1
    assert done["member"]["status"] == "not_enrolled"
    async with browser(client) as carol:
        assert (await password(carol, CAROL)).startswith("/.gateway/enrol")
    [event] = audit_events(caplog, "admin_reset")
    assert (event["admin"], event["member"], event["company"]) == (ALICE, CAROL, "acme")
    assert event["ip"] == "127.0.0.1" and event["request_id"]


async def test_changes_need_a_recent_second_factor(client: Client, clock: FixedClock) -> None:
    """15 minutes after the second factor, reading still works, a change answers
    reauth_required with where to re-authenticate, and nothing changes."""
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await admin_token(client)
    clock.advance(15 * 60)
    await call(client, "GET", MEMBERS, 200, company="acme")
    session = await call(client, "GET", "/session", 200)
    assert session["actions_allowed_until"] is None
    body = await call(
        client, "POST", MEMBER + "/reset", 403, token=token, company="acme", user=CAROL
    )
    assert body["error"] == "reauth_required" and body["reauth_url"].startswith(
        "/.gateway/admin/reauth"
    )
    await call(client, "PATCH", MEMBER, 403, {"name": "X"}, token, company="acme", user=CAROL)
    await call(client, "POST", ACME + "/enforce", 403, {"confirm": True}, token, company="acme")
    assert await runtime(client).store.list_methods(CAROL) == ["totp"]
    assert await runtime(client).store.enforced_since("acme") is None


async def test_name_and_phone_through_the_api(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A new name is set (and removed with ""), a bad number refused, a good one pending."""
    capture_audit(caplog)
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    token = await admin_token(client)
    member = await call(
        client, "PATCH", MEMBER, 200, {"name": "Carol D"}, token, company="acme", user=CAROL
    )
    assert member["name"] == "Carol D" and not member["phone_pending"]
    bad = await call(
        client, "PATCH", MEMBER, 400, {"phone": "12"}, token, company="acme", user=CAROL
    )
    assert "not valid" in bad["message"]
    await call(client, "PATCH", MEMBER, 400, {"email": "x"}, token, company="acme", user=CAROL)
    await call(client, "PATCH", MEMBER, 400, {"name": 5}, token, company="acme", user=CAROL)
    member = await call(
        client,
        "PATCH",
        MEMBER,
        200,
        {"phone": "+44 7400 123456", "name": ""},
        token,
        company="acme",
        user=CAROL,
    )
    assert member["phone_pending"] and member["name"] is None
    assert [e.get("name") for e in audit_events(caplog, "admin_name_changed")] == ["Carol D", None]
    [phone] = audit_events(caplog, "admin_phone_changed")
    assert phone["member"] == CAROL and phone["ending"] == "3456"


async def test_enforce_through_the_api_is_confirmed_and_final(
    client: Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Without {"confirm": true} nothing happens; with it Acme is enforced, once; the company
    then reads as enforced, and no call of the API turns it off."""
    capture_audit(caplog)
    await sign_in(client, ALICE, clock)
    token = await admin_token(client)
    body = await call(
        client, "POST", ACME + "/enforce", 400, {"confirm": "yes"}, token, company="acme"
    )
    assert body["error"] == "confirmation_required"
    first = await call(
        client, "POST", ACME + "/enforce", 200, {"confirm": True}, token, company="acme"
    )
    assert first["enforced"] and first["newly_enforced"] and first["enforced_since"] is not None
    again = await call(
        client, "POST", ACME + "/enforce", 200, {"confirm": True}, token, company="acme"
    )
    assert not again["newly_enforced"] and again["enforced_since"] == first["enforced_since"]
    assert (await call(client, "GET", ACME, 200, company="acme"))["enforced"]
    assert [e["new"] for e in audit_events(caplog, "admin_enforce")] == [True, False]
    for method in ("DELETE", "PUT", "PATCH"):
        answer = await client.request(
            method,
            url(ACME + "/enforce", company="acme"),
            headers={"X-CSRF-Token": token},
            json={"confirm": False},
        )
        assert answer.status in (404, 405)  # no such route
    assert await runtime(client).store.enforced_since("acme") is not None
