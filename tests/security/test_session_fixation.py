"""Session fixation: a session id the attacker chose or obtained, planted in the victim's
browser, never becomes the victim's signed-in session, in portal, header and intercept mode."""

from __future__ import annotations

from tests.security.conftest import PASSWORD, SSO_HEADER, USER, Client, send
from tests.support import code_for, csrf_from_page, portal_login, secret_from_page

SESSION = "gateway_session"


def session_id(client: Client) -> str | None:
    for morsel in client.session.cookie_jar:
        if morsel.key == SESSION:
            return morsel.value
    return None


async def reaches_app(client: Client, sid: str, extra: list[tuple[str, str]] = ()) -> bool:  # type: ignore[assignment]
    """Whether a browser with only this session id gets past the gateway to a protected page."""
    answer = await send(client, "/reports", [("Cookie", f"{SESSION}={sid}"), *extra])
    return answer.status == 200


async def test_portal_planted_ids_are_replaced_at_every_level(portal: Client) -> None:
    """A made-up id is ignored, the attacker's own anonymous id is replaced at the password and
    again at the second factor, and none of the earlier ids is worth anything afterwards."""
    portal.session.cookie_jar.update_cookies({SESSION: "attacker-chosen-id"}, portal.make_url("/"))
    await portal.get("/.gateway/login")
    first = await portal_login(portal, USER, PASSWORD)
    assert first.status == 303
    pending = session_id(portal)
    assert pending and pending != "attacker-chosen-id"
    html = await (await portal.get("/.gateway/enrol")).text()
    done = await portal.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    assert done.status == 303
    verified = session_id(portal)
    assert verified not in (None, pending, "attacker-chosen-id")
    assert await reaches_app(portal, verified or "")
    for old in ("attacker-chosen-id", pending or ""):
        assert not await reaches_app(portal, old)


async def test_portal_attackers_pending_session_is_not_upgraded(portal: Client) -> None:
    """The attacker signs in (first factor only) and plants that session in the victim's
    browser; the victim then signs in as themselves: the attacker's id stays worthless."""
    await portal_login(portal, USER, PASSWORD)
    planted = session_id(portal)
    html = await (await portal.get("/.gateway/enrol")).text()
    await portal.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    assert session_id(portal) != planted
    assert not await reaches_app(portal, planted or "")


async def test_header_mode_new_name_new_session(header: Client) -> None:
    """Header mode: a session started for one name is never reused for another name, and the
    second factor gives a new id."""
    await send(header, "/", [(SSO_HEADER, "mallory@example.com")])
    answer = await header.get(
        "/", headers={SSO_HEADER: "mallory@example.com"}, allow_redirects=False
    )
    planted = session_id(header)
    assert planted and answer.status == 303
    answer = await header.get("/", headers={SSO_HEADER: USER}, allow_redirects=False)
    victim = session_id(header)
    assert victim != planted
    html = await (await header.get("/.gateway/enrol", headers={SSO_HEADER: USER})).text()
    await header.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        headers={SSO_HEADER: USER},
        allow_redirects=False,
    )
    verified = session_id(header)
    assert verified not in (planted, victim)
    for old in (planted or "", victim or ""):
        assert not await reaches_app(header, old, [(SSO_HEADER, USER)])


async def test_intercept_attackers_anonymous_session_is_not_upgraded(
    intercept: Client,
) -> None:
    """Intercept mode keeps an anonymous session to hold the application's pre-login cookie;
    planted in the victim's browser, it is replaced when the victim's login succeeds."""
    from tests.identity.test_intercept import app_login
    from tests.support import enrol_totp

    await intercept.get("/login")
    planted = session_id(intercept)
    assert planted
    login = await app_login(intercept, "alice@example.com", "alice-password")
    assert session_id(intercept) != planted
    await enrol_totp(intercept, login.headers["Location"])
    assert not await reaches_app(intercept, planted)


async def test_logout_kills_the_session_on_the_server(portal: Client) -> None:
    """A copy of the verified id taken before sign-out is worthless after it."""
    await portal_login(portal, USER, PASSWORD)
    html = await (await portal.get("/.gateway/enrol")).text()
    await portal.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    copied = session_id(portal) or ""
    assert await reaches_app(portal, copied)
    token = csrf_from_page(await (await portal.get("/.gateway/logout")).text())
    out = await portal.post("/.gateway/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    assert not await reaches_app(portal, copied)


async def test_malformed_session_cookies_fail_closed(portal: Client) -> None:
    """Odd session cookies are "no session": a sign-in page, never a 500, never the app."""
    for value in ("", "x" * 5000, "%00", "a=b=c", '"quoted"', "\x01", "../../etc"):
        answer = await send(portal, "/reports", [("Cookie", f"{SESSION}={value}")])
        assert answer.status in (303, 400), (value, answer.status)
    answer = await send(portal, "/reports", [("Cookie", f"{SESSION}=a; {SESSION}=b")])
    assert answer.status == 303
