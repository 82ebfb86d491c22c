"""Node-RED behind the gateway: the ways to a token, or to its use, without the second factor,
each of which must fail (test_spa.py's docstring describes Node-RED's sign-in they rest on)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import ClientSession, WSServerHandshakeError

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
    grant,
    no_token,
    settings_user,
    signed_in,
    token_login,
)
from tests.compat.support import another_browser, enrolment_opens

pytestmark = pytest.mark.compat


async def test_the_password_alone_yields_no_token(make_gateway: Any, node_red: NodeRed) -> None:
    """A correct password sent to /auth/token through the gateway, however it asks, never
    answers with the token: a script (the editor's XHR, one wanting JSON) gets 401
    second_factor_required, a plain form post or JSON without those headers a 303 to the
    second factor."""
    client = await gateway(make_gateway, node_red)
    for headers, status in (
        (XHR, 401),
        ({"Accept": "application/json"}, 401),
        ({"Sec-Fetch-Mode": "cors"}, 401),
        ({}, 303),
        ({"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, 303),
    ):
        answer = await client.post(
            "/auth/token", data=grant(*ALICE), headers=headers, allow_redirects=False
        )
        no_token(await answer.text())
        assert answer.status == status, headers
        where = answer.headers.get("Location") or (await answer.json())["location"]
        assert where.startswith("/.gateway/enrol"), where
    answer = await client.post("/auth/token", json=grant(*ALICE), allow_redirects=False)
    no_token(await answer.text())
    assert answer.status == 303
    assert (await settings_user(client, None))[0] in (303, 401)


@pytest.mark.parametrize(
    "path", ["/auth/token/", "/Auth/Token", "/AUTH/TOKEN", "/auth/%74oken", "/auth/%54oken"]
)
async def test_login_path_spelled_otherwise_yields_no_token(
    make_gateway: Any, node_red: NodeRed, path: str
) -> None:
    """Express matches routes without regard to case and after percent-decoding: Node-RED
    hands out a token at each of these paths (checked directly). Through the gateway the
    password alone gets none of them."""
    async with ClientSession() as direct:
        straight = await direct.post(f"{node_red.url}{path}", data=grant(*ALICE))
        assert straight.status == 200 and "access_token" in await straight.text(), path
    client = await gateway(make_gateway, node_red)
    answer = await client.post(path, data=grant(*ALICE), headers=XHR, allow_redirects=False)
    text = await answer.text()
    assert "access_token" not in text, f"POST {path}: the password alone got a token"
    assert answer.status in (400, 401, 404), f"POST {path}: {answer.status}"


async def test_utf16_json_login_is_refused(make_gateway: Any, node_red: NodeRed) -> None:
    """Node-RED reads a JSON login in UTF-16LE; the gateway refuses it unread."""
    client = await gateway(make_gateway, node_red)
    answer = await client.post(
        "/auth/token",
        data=json.dumps(grant(*ALICE)).encode("utf-16le"),
        headers={"Content-Type": "application/json; charset=utf-16le"},
    )
    assert answer.status == 400
    no_token(await answer.text())


async def test_json_without_content_type_is_refused(make_gateway: Any, node_red: NodeRed) -> None:
    """A JSON login with no Content-Type is refused and never forwarded."""
    client = await gateway(make_gateway, node_red)
    answer = await client.post(
        "/auth/token",
        data=json.dumps(grant(*ALICE)).encode(),
        headers={"Content-Type": ""},
        skip_auto_headers=["Content-Type"],
    )
    assert answer.status == 400
    no_token(await answer.text())


async def test_user_name_in_the_query_with_a_decoy_in_the_body_is_refused(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """`username` in the query string, whether or not the body has one, is refused."""
    client = await gateway(make_gateway, node_red)
    body = grant(*BOB)
    answer = await client.post(f"/auth/token?username={quote(ALICE[0])}", data=body, headers=XHR)
    assert answer.status == 400
    del body["username"]
    answer = await client.post(f"/auth/token?username={quote(BOB[0])}", data=body, headers=XHR)
    assert answer.status == 400
    no_token(await answer.text())


async def test_wrong_password_is_node_reds_refusal(make_gateway: Any, node_red: NodeRed) -> None:
    """A wrong password gets Node-RED's own 403 and no second factor starts."""
    client = await gateway(make_gateway, node_red)
    answer = await token_login(client, ALICE[0], "wrong")
    assert answer.status == 403
    assert (await answer.json())["error"] == "invalid_grant"
    assert not await enrolment_opens(client)


async def test_stolen_token_in_headers_does_not_reach_node_red(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """A token got elsewhere, sent as `Authorization: Bearer` (any case) or with Basic, without
    a verified gateway session, never authenticates."""
    token = await direct_token(node_red)
    client = await gateway(make_gateway, node_red)
    basic = base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    for name, value in (
        ("Authorization", f"Bearer {token}"),
        ("authorization", f"bearer {token}"),
        ("Authorization", f"Basic {basic}"),
    ):
        answer = await client.get("/settings", headers={**API, name: value})
        assert answer.status == 401, name
    assert (await settings_user(client, token))[0] == 401


async def test_stolen_token_in_the_query_is_stripped(make_gateway: Any, node_red: NodeRed) -> None:
    """`access_token` (named in credentials.query) is removed from the query string without a
    verified gateway session, also percent-encoded (Express decodes query names)."""
    token = quote(await direct_token(node_red), safe="")
    client = await gateway(make_gateway, node_red)
    for query in (f"access_token={token}", f"%61ccess_token={token}", f"access%5Ftoken={token}"):
        answer = await client.get(f"/settings?{query}", headers=API)
        assert answer.status == 401, query


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


BODY_SHAPES = {
    # name: (Content-Type, Content-Encoding or None, body(token) -> bytes)
    "json": ("application/json", None, lambda t: json.dumps({**DEPLOY, "access_token": t})),
    "json-escaped-key": (
        "application/json",
        None,
        lambda t: json.dumps({**DEPLOY, "access_token": t}).replace("access_", "\\u0061ccess_"),
    ),
    "form": ("application/x-www-form-urlencoded", None, lambda t: urlencode({"access_token": t})),
    "form-encoded-key": (
        "application/x-www-form-urlencoded",
        None,
        lambda t: "access%5Ftoken=" + quote(t, safe=""),
    ),
    # body-parser (Node-RED's) inflates gzip and deflate bodies before it reads them
    "form-gzip": (
        "application/x-www-form-urlencoded",
        "gzip",
        lambda t: urlencode({"access_token": t}),
    ),
    "json-gzip": (
        "application/json",
        "gzip",
        lambda t: json.dumps({**DEPLOY, "access_token": t}),
    ),
    # body-parser reads JSON in any charset whose name starts with "utf-", UTF-7 included:
    # "+AGE-" is UTF-7 for "a"
    "json-utf7": (
        "application/json; charset=utf-7",
        None,
        lambda t: (
            json.dumps({**DEPLOY, "access_token": t})
            .replace("+", "+-")  # UTF-7's "+"
            .replace('"access_token"', '"+AGE-ccess_token"')
        ),
    ),
}
DEPLOY = flows("stolen-tab", "deployed with a stolen token")


@pytest.mark.parametrize("shape", list(BODY_SHAPES))
async def test_stolen_token_in_a_request_body_is_refused(
    make_gateway: Any, node_red: NodeRed, shape: str
) -> None:
    """Node-RED also takes `access_token` from a JSON or form body (credentials.fields): a
    request carrying it in any shape Node-RED reads is refused (400) and never deploys."""
    token = await direct_token(node_red)
    client = await gateway(make_gateway, node_red)
    content_type, encoding, make = BODY_SHAPES[shape]
    body = make(token).encode("ascii")
    headers = {**API, "Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
        body = _gzip(body)
    probe = await client.get("/settings", data=body, headers=headers)
    answer = await client.post(
        "/flows", data=body, headers={**headers, "Node-RED-Deployment-Type": "full"}
    )
    deployed = "stolen-tab" in await deployed_ids(node_red)
    seen = f"GET /settings: {probe.status}, POST /flows: {answer.status}, deployed: {deployed}"
    assert not deployed and probe.status != 200, f"{shape}: the stolen token worked ({seen})"
    assert (probe.status, answer.status) == (400, 400), f"{shape}: not refused ({seen})"


async def test_the_password_alone_never_deploys(make_gateway: Any, node_red: NodeRed) -> None:
    """End to end, through the gateway only, with alice's password and no second factor: the
    token from a login path Express reads as /auth/token, then that token in a body Node-RED
    reads as `access_token`. Neither step may work, so no flow is deployed."""
    client = await gateway(make_gateway, node_red)
    login = await client.post("/Auth/Token", data=grant(*ALICE), headers=XHR)
    token = (await login.json()).get("access_token") if login.status == 200 else None
    if token is None:
        return  # the first step is refused: nothing more to try
    text = json.dumps({**flows("bypass-tab"), "access_token": token})
    body = text.replace("+", "+-").replace('"access_token"', '"+AGE-ccess_token"')
    deploy = await client.post(
        "/flows",
        data=body.encode("ascii"),
        headers={**API, "Content-Type": "application/json; charset=utf-7"},
    )
    deployed = "bypass-tab" in await deployed_ids(node_red)
    assert not deployed, f"deployed with the password alone (POST /flows: {deploy.status})"


async def test_websocket_needs_a_verified_session(make_gateway: Any, node_red: NodeRed) -> None:
    """Without a gateway session, and with the password alone, the editor's websocket is
    refused at the upgrade (403), so a stolen token cannot authenticate on it."""
    token = await direct_token(node_red)
    client = await gateway(make_gateway, node_red)
    for step in ("no session", "password only"):
        if step == "password only":
            assert (await token_login(client, *ALICE)).status == 401
        with pytest.raises(WSServerHandshakeError) as refused:
            async with client.ws_connect("/comms") as ws:
                await ws.send_json({"auth": token})
                pytest.fail(f"{step}: opened, Node-RED said {await ws.receive(timeout=10)}")
        assert refused.value.status == 403, step


async def test_token_of_another_user_is_refused(make_gateway: Any, node_red: NodeRed) -> None:
    """Bob's verified gateway session carries neither a token got from Node-RED directly nor
    the token alice's own verified session was given."""
    client = await gateway(make_gateway, node_red)
    _, alices = await signed_in(client, ALICE)
    assert await settings_user(client, alices) == (200, ALICE[0])
    stolen = await direct_token(node_red, ALICE)
    async with another_browser(client) as bob:
        _, bobs = await signed_in(bob, BOB)
        assert await settings_user(bob, bobs) == (200, BOB[0])
        for token in (stolen, alices):
            status, user = await settings_user(bob, token)
            assert user != ALICE[0], "alice's token worked with bob's second factor"
            assert status == 401
            deploy = await bob.post(
                "/flows",
                json=flows("bob-as-alice"),
                headers={**API, "Authorization": f"Bearer {token}"},
            )
            assert deploy.status == 401
        assert await settings_user(client, bobs) == (401, None), "and bob's not in alice's"


async def test_verified_session_signing_in_as_another_user_gets_no_token(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """Alice, verified, sends bob's password to the editor's login: that is a new login for
    bob, who must pass his own second factor; no token is released and alice's session ends."""
    client = await gateway(make_gateway, node_red)
    _, alices = await signed_in(client, ALICE)
    answer = await token_login(client, *BOB)
    no_token(await answer.text())
    assert answer.status == 401
    assert (await answer.json())["location"].startswith("/.gateway/enrol")
    assert (await settings_user(client, alices))[0] in (303, 401), "alice's session ended"


async def test_script_login_waits_for_the_second_factor_without_breaking_the_editor(
    make_gateway: Any, node_red: NodeRed
) -> None:
    """The editor's login XHR between the password and the code gets JSON it can show (401,
    not the enrolment page's HTML, which jQuery would store as the token), again and again."""
    client = await gateway(make_gateway, node_red)
    for _ in range(2):
        answer = await token_login(client, *ALICE)
        assert answer.status == 401
        assert answer.content_type == "application/json"
        body = await answer.json()
        assert body["error"] == "second_factor_required"
        assert body["location"].startswith("/.gateway/enrol")
        no_token(json.dumps(body))
