"""Node-RED (npm) behind the gateway in intercept mode: a single-page editor that signs in with
an XHR and holds a bearer token, not a cookie.

Node-RED's sign-in (tests/compat/NOTES-php-spa.md has the details): POST /auth/token, an OAuth2
password grant sent form-encoded by the editor (JSON is read too, in UTF-16 as well), answers
200 {"access_token", "expires_in", "token_type": "Bearer"} and sets no cookie. The editor keeps
the token in localStorage and sends it as `Authorization: Bearer` on its XHR calls and as the
first message {"auth": TOKEN} on its websocket /comms. Its API also takes the token as an
`access_token` query parameter or body field (passport-http-bearer). Express matches its routes
without regard to case; body-parser inflates gzip/deflate bodies and reads JSON in any "utf-*"
charset, UTF-7 included.

Behind the gateway (`login.token`): the editor's first login gets 401 second_factor_required
(no token), the person completes the second factor in the browser, the editor's login again
from the verified session gets the token, bound to that gateway session; any other token is
stripped, and /comms opens only for a verified session.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import WSMsgType
from playwright.sync_api import expect

from tests.browser import chromium_page
from tests.compat.app_spa import (
    ALICE,
    API,
    BOB,
    XHR,
    NodeRed,
    deployed_ids,
    direct_token,
    flows,
    gateway,
    no_token,
    red_app,
    settings_user,
    signed_in,
    token_login,
)
from tests.compat.support import Client, gateway_process, pass_challenge
from tests.e2e.flow import enrol as enrol_in_browser
from tests.support import enrol_totp

pytestmark = pytest.mark.compat


# --- the whole flow ------------------------------------------------------------------------


async def test_editor_signs_in_deploys_and_talks_over_its_websocket(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """The editor's login XHR leads to the second factor (no token before it); after it the
    editor's login again gets the token, bound to the gateway session: the API answers with it,
    a deploy works, /comms carries the debug message; a token from anywhere else is stripped;
    Node-RED's sign-out ends the gateway session and the code is asked again at the next
    login."""
    client = await gateway(make_gateway, node_red)
    editor = await client.get("/")
    assert editor.status == 200 and "<title>Node-RED</title>" in await editor.text()
    prompts = await (await client.get("/auth/login")).json()
    assert prompts["type"] == "credentials"
    assert (await settings_user(client, None))[0] == 401

    first = await token_login(client, *ALICE)
    text = await first.text()
    no_token(text)
    assert first.status == 401, text
    step = json.loads(text)
    assert step["error"] == "second_factor_required"
    assert step["location"].startswith("/.gateway/enrol")
    secret, _ = await enrol_totp(client, step["location"])

    again = await token_login(client, *ALICE)  # the editor, reloaded, shows its login again
    assert again.status == 200, await again.text()
    answer = await again.json()
    assert answer["token_type"] == "Bearer"
    token = str(answer["access_token"])
    assert await settings_user(client, token) == (200, ALICE[0])
    bearer = {**API, "Authorization": f"Bearer {token}"}

    deployed = await client.post(
        "/flows", json=flows("compat-tab"), headers={**bearer, "Node-RED-Deployment-Type": "full"}
    )
    assert deployed.status == 200, await deployed.text()
    async with client.ws_connect("/comms") as ws:
        await ws.send_json({"auth": token})
        assert json.loads((await ws.receive(timeout=10)).data) == {"auth": "ok"}
        await ws.send_json({"subscribe": "debug"})
        assert await _inject(client, "compat-tab-inject", bearer) == 200
        heard = await _debug_message(ws)
        assert heard["msg"] == "hello through the gateway"

    for other in (await direct_token(node_red, BOB), await direct_token(node_red, ALICE)):
        assert (await settings_user(client, other))[0] == 401, "a token not bound is stripped"
        query = await client.get(f"/settings?access_token={quote(other, safe='')}", headers=API)
        assert query.status == 401
    in_body = await client.post(
        "/flows", json={**flows("compat-tab"), "access_token": token}, headers=bearer
    )
    assert in_body.status == 400, "access_token in a body is refused, also when verified"

    revoked = await client.post("/auth/revoke", data={"token": token}, headers={**bearer, **XHR})
    assert revoked.status == 200
    assert any(
        line.startswith("gateway_session=;") for line in revoked.headers.getall("Set-Cookie")
    )
    assert (await settings_user(client, token))[0] == 401

    login = await token_login(client, *ALICE)
    no_token(await login.text())
    assert login.status == 401
    location = (await login.json())["location"]
    assert location.startswith("/.gateway/challenge")
    done = await pass_challenge(client, location, secret)
    assert done.status == 303
    again = await token_login(client, *ALICE)
    assert again.status == 200
    assert await settings_user(client, (await again.json())["access_token"]) == (200, ALICE[0])


async def test_large_deploy_of_a_verified_user_goes_through(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """Node-RED takes API bodies up to 5 MB (apiMaxLength's default); flows with embedded
    code, templates or images pass 1 MiB. A verified user's deploy of 1.2 MB reaches it."""
    client = await gateway(make_gateway, node_red)
    _, token = await signed_in(client)
    big = json.dumps(flows("large-tab", "x" * 1_200_000)).encode()
    answer = await client.post(
        "/flows",
        data=io.BytesIO(big),  # aiohttp warns about large bytes bodies
        headers={
            **API,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Length": str(len(big)),
            "Node-RED-Deployment-Type": "full",
        },
    )
    assert answer.status == 200, f"{answer.status}: {(await answer.text())[:200]}"
    assert "large-tab" in await deployed_ids(node_red)


async def _inject(client: Client, node: str, headers: dict[str, str]) -> int:
    """Press an inject node's button. Node-RED answers a deploy before it has started the new
    flows, so an inject at once may find no node yet (404): tried for up to five seconds."""
    for _ in range(50):
        answer = await client.post(f"/inject/{node}", headers=headers)
        if answer.status != 404:
            return int(answer.status)
        await asyncio.sleep(0.1)
    return 404


async def _debug_message(ws: Any) -> dict[str, Any]:
    for _ in range(10):
        message = await ws.receive(timeout=10)
        assert message.type is WSMsgType.TEXT, message
        for event in json.loads(message.data):
            if event.get("topic") == "debug":
                return dict(event["data"])
    raise AssertionError("no debug message on /comms")


# --- in a browser --------------------------------------------------------------------------


COMMS_CHECK = """async (token) => {
    const url = location.origin.replace(/^http/, "ws") + "/comms";
    return await new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send(JSON.stringify({auth: token}));
        ws.onmessage = (event) => { resolve(event.data); ws.close(); };
        ws.onerror = () => resolve("error");
        setTimeout(() => resolve("timeout"), 10000);
    });
}"""


@pytest.mark.browser
def test_in_a_browser(node_red: NodeRed, tmp_path: Any) -> None:
    """Chromium opens the editor and signs in on its dialog. The gateway answers the dialog's
    XHR with 401 second_factor_required, which the editor can only show as "Login failed": the
    person reloads the page (what the JSON's message says), the gateway takes them to enrol,
    and back in the editor they sign in on its dialog again: the token is released, bound, and
    the editor opens as alice, its websocket connected."""
    with gateway_process(tmp_path, "red", red_app(node_red)) as base, chromium_page() as page:

        def sign_in_on_the_dialog() -> None:
            page.locator("#node-dialog-login-username").fill(ALICE[0])
            page.locator("#node-dialog-login-password").fill(ALICE[1])
            page.locator("#node-dialog-login-submit").click()

        page.goto(base + "/")
        sign_in_on_the_dialog()
        expect(page.locator("#node-dialog-login-failed")).to_be_visible()
        assert "access_token" not in page.evaluate("() => JSON.stringify(localStorage)")
        page.reload()  # what the person does: the gateway sends them to enrol
        enrol_in_browser(page)
        expect(page).to_have_url(base + "/")
        sign_in_on_the_dialog()  # the editor asks again; now the token is released
        expect(page.locator("#red-ui-header .red-ui-user-profile")).to_be_visible()
        user = page.evaluate("() => RED.settings.user && RED.settings.user.username")
        assert user == ALICE[0]
        token = page.evaluate("() => RED.settings.get('auth-tokens').access_token")
        assert json.loads(page.evaluate(COMMS_CHECK, token)) == {"auth": "ok"}
        page.wait_for_timeout(1000)
        expect(page.locator(".red-ui-notification-error")).to_have_count(0)
        page.reload()  # a later visit: the stored token still works through the gateway
        expect(page.locator("#red-ui-header .red-ui-user-profile")).to_be_visible()
        expect(page.locator("#node-dialog-login-username")).to_have_count(0)
