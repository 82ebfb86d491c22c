"""Node-RED, from npm, with `adminAuth` (user names and bcrypt hashes in a settings.js written
here), for the compatibility tests.

The editor is a single-page application: it signs in with an XHR (POST /auth/token, an OAuth2
password grant) and keeps the access token it gets back in localStorage; its API calls carry
`Authorization: Bearer`, and its websocket (/comms) authenticates with a first message
{"auth": token}. Node-RED sets no cookie at all.

Installed with `npm install --prefix .compat/node-red-VERSION` at a pinned version (Node-RED 5
needs Node 22; Debian's and this machine's Node is 20), once: a marker file says the install
completed, so a second run costs nothing.

Below Node-RED itself: its intercept settings and the steps through the gateway the tests take
(test_spa.py's docstring describes Node-RED's sign-in).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from tests.compat.support import COMPAT_DIR, Client, RunningApp, ServerProcess, cached, run
from tests.support import enrol_totp, free_port, intercept_app

VERSION = "4.1.8"
INSTALL = COMPAT_DIR / f"node-red-{VERSION}"
RED_JS = INSTALL / "node_modules" / "node-red" / "red.js"
NODE = "node"

USERS = {
    # Node-RED user names are free text, so the accounts are the email addresses the policy places
    "alice@example.com": "alice-red-password",
    "bob@example.com": "bob-red-password",
}
CLIENT_ID = "node-red-editor"
NPM_OPTIONS = ("--no-audit", "--no-fund", "--omit=dev", "--no-save", "--loglevel=error")


def ensure_installed(timeout: float = 900) -> None:
    """node-red@VERSION under .compat/, installed from npm once (cached). Raises RuntimeError
    when it cannot be installed."""

    def install() -> None:
        if shutil.which(NODE) is None or shutil.which("npm") is None:
            raise RuntimeError("Node.js and npm are needed: apt-get install nodejs npm")
        INSTALL.mkdir(parents=True)
        command = ["npm", "install", "--prefix", str(INSTALL), *NPM_OPTIONS, f"node-red@{VERSION}"]
        run(command, timeout=timeout)
        if not RED_JS.exists():
            raise RuntimeError(f"npm install node-red@{VERSION} made no {RED_JS}")

    cached(INSTALL, f"node-red@{VERSION} complete\n", install, marker="complete")


def _bcrypt(passwords: list[str]) -> list[str]:
    """bcrypt hashes made with the bcryptjs Node-RED itself ships."""
    script = (
        "const b = require(process.argv[1]);"
        "console.log(JSON.stringify(JSON.parse(process.argv[2]).map(p => b.hashSync(p, 8))));"
    )
    bcryptjs = INSTALL / "node_modules" / "bcryptjs"
    done = subprocess.run(
        [NODE, "-e", script, str(bcryptjs), json.dumps(passwords)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout))


def write_settings(user_dir: Path, port: int) -> Path:
    user_dir.mkdir(parents=True)
    hashes = _bcrypt(list(USERS.values()))
    settings = {
        "uiHost": "127.0.0.1",
        "uiPort": port,
        "userDir": str(user_dir),
        "flowFile": "flows.json",
        "credentialSecret": "compat-tests-only",
        "adminAuth": {
            "type": "credentials",
            "users": [
                {"username": name, "password": digest, "permissions": "*"}
                for name, digest in zip(USERS, hashes, strict=True)
            ],
        },
        # nothing that reaches the network: no update check, no palette catalogue, no tours
        "telemetry": {"enabled": False, "updateNotification": False},
        "diagnostics": {"enabled": False, "ui": False},
        "externalModules": {"autoInstall": False, "palette": {"allowInstall": False}},
        "editorTheme": {
            "tours": False,
            "projects": {"enabled": False},
            "palette": {"catalogues": []},
            "multiplayer": {"enabled": False},
        },
        "logging": {"console": {"level": "warn", "metrics": False, "audit": True}},
    }
    path = user_dir / "settings.js"
    path.write_text("module.exports = " + json.dumps(settings, indent=2) + ";\n")
    (user_dir / "flows.json").write_text("[]\n")
    return path


@dataclass
class NodeRed(RunningApp):
    """A running Node-RED, its user directory under `root`."""

    root: Path

    @classmethod
    def start(cls, root: Path) -> NodeRed:
        port = free_port()
        settings = write_settings(root / "user", port)
        server = ServerProcess(
            [NODE, str(RED_JS), "--settings", str(settings), "--userDir", str(root / "user")],
            port, root / "node-red.log", "/auth/login", cwd=root,
            env=dict(os.environ, NODE_ENV="production"),
        )  # fmt: skip
        return cls(server, root)


# --- steps through the gateway, shared by test_spa.py and test_spa_attacks.py ---------------

ALICE = ("alice@example.com", USERS["alice@example.com"])
BOB = ("bob@example.com", USERS["bob@example.com"])
XHR = {  # what the editor's jQuery sends with its login
    "X-Requested-With": "XMLHttpRequest",
    "Accept": "*/*",
    "Sec-Fetch-Mode": "cors",
}
API = {"Node-RED-API-Version": "v2"}


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
    return intercept_app(red.url, intercept=settings)


async def gateway(make_gateway: Any, red: NodeRed, **intercept: Any) -> Client:
    return await make_gateway({"red": red_app(red, **intercept)})


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
    secret, _ = await enrol_totp(client, step["location"])
    again = await token_login(client, *user)
    assert again.status == 200, await again.text()
    return secret, str((await again.json())["access_token"])
