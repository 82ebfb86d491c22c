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
import base64
import gzip
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import ClientSession, CookieJar, WSMsgType, WSServerHandshakeError

from tests.compat import app_spa
from tests.compat.app_spa import CLIENT_ID, USERS, NodeRed
from tests.support import code_for, csrf_from_page, secret_from_page

pytestmark = pytest.mark.compat

Client = Any  # aiohttp's TestClient
ALICE = ("alice@example.com", USERS["alice@example.com"])
BOB = ("bob@example.com", USERS["bob@example.com"])
XHR = {  # what the editor's jQuery sends with its login
    "X-Requested-With": "XMLHttpRequest",
    "Accept": "*/*",
    "Sec-Fetch-Mode": "cors",
}
API = {"Node-RED-API-Version": "v2"}


@pytest.fixture(scope="session")
def node_red(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeRed]:
    """One Node-RED for the session, on a free port, with its own settings and user directory."""
    try:
        app_spa.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    red = NodeRed.start(tmp_path_factory.mktemp("node-red"))
    yield red
    red.stop()


def red_app(red: NodeRed, **intercept: Any) -> dict[str, Any]:
    """Node-RED's intercept settings (tests/compat/NOTES-php-spa.md explains each)."""
    settings: dict[str, Any] = {
        "login": {
            "path": "/auth/token",
            "method": "POST",
            "username_field": "username",
            "token": "access_token",  # the bearer token in the login answer's JSON
            "success": {"status": [200]},
        },
        "session_cookies": [],  # Node-RED sets no cookie at all
        "whoami": {"path": "/settings", "json": "user.username"},  # asked with the token
        "logout": {"path": "/auth/revoke", "methods": ["POST"]},
        # passport-http-bearer takes the token from ?access_token= and a body's access_token too
        "credentials": {"query": ["access_token"], "fields": ["access_token"]},
    }
    settings.update(intercept)
    return {"upstream": red.url, "hosts": ["*"], "identity": "intercept", "intercept": settings}


async def gateway(make_gateway: Any, red: NodeRed, **intercept: Any) -> Client:
    return await make_gateway({"red": red_app(red, **intercept)})


@asynccontextmanager
async def another_browser(client: Client) -> AsyncIterator[ClientSession]:
    """A second browser (its own cookies) on the same gateway."""
    base = str(client.make_url("/"))
    async with ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True)) as browser:
        yield browser


def grant(user: str, password: str) -> dict[str, str]:
    """The editor's login body (RED.user.login in red.js)."""
    return {
        "client_id": CLIENT_ID,
        "grant_type": "password",
        "scope": "",
        "username": user,
        "password": password,
    }


async def token_login(client: Client, user: str, password: str) -> Any:
    """The editor's login XHR: form-encoded, as jQuery sends it."""
    return await client.post(
        "/auth/token", data=grant(user, password), headers=XHR, allow_redirects=False
    )


async def direct_token(red: NodeRed, user: tuple[str, str] = ALICE) -> str:
    """A token got from Node-RED itself, not through the gateway (a stolen one)."""
    async with ClientSession() as direct:
        answer = await direct.post(f"{red.url}/auth/token", data=grant(*user))
        assert answer.status == 200
        return str((await answer.json())["access_token"])


async def deployed_ids(red: NodeRed) -> set[str]:
    """The ids of the flows Node-RED runs, asked of Node-RED directly."""
    token = await direct_token(red, BOB)
    async with ClientSession() as direct:
        answer = await direct.get(
            f"{red.url}/flows", headers={**API, "Authorization": f"Bearer {token}"}
        )
        assert answer.status == 200
        return {str(node["id"]) for node in (await answer.json())["flows"]}


async def settings_user(client: Client, token: str | None) -> tuple[int, str | None]:
    """GET /settings as the editor sends it: the status and the user Node-RED names."""
    headers = dict(API)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    answer = await client.get("/settings", headers=headers, allow_redirects=False)
    if answer.status != 200:
        return answer.status, None
    user = (await answer.json()).get("user")
    return 200, user["username"] if user else None


async def enrol_at(client: Client, location: str) -> tuple[str, Any]:
    page = await client.get(location)
    text = await page.text()
    secret = secret_from_page(text)
    done = await client.post(
        location,
        data={"csrf_token": csrf_from_page(text), "code": code_for(secret)},
        allow_redirects=False,
    )
    return secret, done


def no_token(text: str) -> None:
    assert "access_token" not in text, "a token reached the browser on the password alone"


def flows(tab: str, payload: str = "hello through the gateway") -> dict[str, Any]:
    """A tab with an inject node wired to a debug node, as the editor deploys it."""
    return {
        "flows": [
            {"id": tab, "type": "tab", "label": tab},
            {
                "id": f"{tab}-inject",
                "type": "inject",
                "z": tab,
                "name": "ping",
                "props": [{"p": "payload"}],
                "payload": payload,
                "payloadType": "str",
                "repeat": "",
                "once": False,
                "wires": [[f"{tab}-debug"]],
            },
            {
                "id": f"{tab}-debug",
                "type": "debug",
                "z": tab,
                "name": "out",
                "active": True,
                "tosidebar": True,
                "complete": "payload",
                "wires": [],
            },
        ]
    }


async def signed_in(client: Client, user: tuple[str, str] = ALICE) -> tuple[str, str]:
    """The editor's login, the second factor, then the editor's login again (the first one's
    token never reaches the browser): returns the TOTP secret and the token."""
    first = await token_login(client, *user)
    assert first.status == 401, await first.text()
    step = await first.json()
    assert step["error"] == "second_factor_required"
    secret, done = await enrol_at(client, step["location"])
    assert done.status == 303
    again = await token_login(client, *user)
    assert again.status == 200, await again.text()
    return secret, str((await again.json())["access_token"])


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
    secret, done = await enrol_at(client, step["location"])
    assert done.status == 303

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
    page = await client.get(location)
    done = await client.post(
        location,
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "code": code_for(secret, offset_steps=1),
        },
        allow_redirects=False,
    )
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


# --- attacks -------------------------------------------------------------------------------


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
    enrol = await client.get("/.gateway/enrol", allow_redirects=False)
    assert enrol.status != 200 or "data-secret" not in await enrol.text()


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


# --- in a browser --------------------------------------------------------------------------


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A page of Debian's Chromium, headless, in a fresh profile (tests/e2e/conftest.py's)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run this")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


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
    from playwright.sync_api import expect

    from tests.e2e.flow import enrol as enrol_in_browser
    from tests.support import GatewayProcess, settings_dict

    settings = settings_dict(tmp_path, {"red": red_app(node_red)})
    process = GatewayProcess.run(tmp_path, settings)
    try:
        with chromium_page() as page:
            base = process.url

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
    finally:
        process.stop()
