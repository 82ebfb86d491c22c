"""The OpenID provider the tests/oidc suite runs (node-oidc-provider from npm, in provider.mjs
beside this file), and the steps of a sign-in through it that the tests drive over HTTP: the
gateway's login page, the provider's login form, and the callback back at the gateway."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, CookieJar

from tests.compat.support import COMPAT_DIR, ServerProcess, cached, run
from tests.support import free_port

VERSION = "9.13.3"
INSTALL = COMPAT_DIR / f"oidc-provider-{VERSION}"
SCRIPT = Path(__file__).with_name("provider.mjs")
NPM_OPTIONS = ("--no-audit", "--no-fund", "--omit=dev", "--no-save", "--loglevel=error")

CLIENT_ID = "gateway"
CLIENT_SECRET = "a client secret for the tests"
ACCOUNTS = {
    "alice@example.com": {"email": "alice@example.com", "email_verified": True, "name": "Alice"},
    "bob@mfa.example": {"email": "bob@mfa.example", "email_verified": True, "name": "Bob"},
    "eve@example.com": {"email": "eve@example.com", "email_verified": False, "name": "Eve"},
    # a Kelvin sign (U+212A) where kate@example.com has a K: lower() makes it hers
    "\u212aate@example.com": {
        "email": "\u212aate@example.com",
        "email_verified": True,
        "name": "Mallory",
    },
    "carol@elsewhere.example": {
        "email": "carol@elsewhere.example",
        "email_verified": True,
        "name": "Carol",
        "groups": ["mfa-staff", "readers"],
    },
}


def ensure_installed(timeout: float = 600) -> Path:
    """oidc-provider@VERSION under .compat/, installed from npm once (cached)."""

    def install() -> None:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("Node.js and npm are needed: apt-get install nodejs npm")
        INSTALL.mkdir(parents=True)
        run(["npm", "install", "--prefix", str(INSTALL), *NPM_OPTIONS, f"oidc-provider@{VERSION}"],
            timeout=timeout)  # fmt: skip

    return cached(INSTALL, f"oidc-provider@{VERSION} complete\n", install, marker="complete")


@dataclass
class Provider:
    server: ServerProcess
    issuer: str

    def stop(self) -> None:
        self.server.stop()


def start_provider(work: Path) -> Provider:
    """The provider on a free loopback port; its script is copied beside its node_modules (an
    ES module finds its imports from where it is)."""
    install = ensure_installed()
    script = install / "provider.mjs"
    shutil.copyfile(SCRIPT, script)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        # a native client: a loopback redirect URI matches whatever port the gateway has
        "application_type": "native",
        "redirect_uris": ["http://127.0.0.1/.gateway/oidc/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
        # auth_time in every ID token, as Keycloak and Okta give it
        "require_auth_time": True,
    }
    config = {"port": port, "issuer": issuer, "clients": [client], "accounts": ACCOUNTS}
    config_file = work / "provider.json"
    config_file.write_text(json.dumps(config))
    server = ServerProcess(
        ["node", str(script), str(config_file)],
        port,
        work / "provider.log",
        "/.well-known/openid-configuration",
        cwd=install,
    )
    return Provider(server, issuer)


def oidc_app(upstream: str, issuer: str, secret_file: Path, **oidc: Any) -> dict[str, Any]:
    secret_file.write_text(CLIENT_SECRET)
    return {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "portal",
        "portal": {
            "oidc": {
                "issuer": issuer,
                "client_id": CLIENT_ID,
                "client_secret": {"file": str(secret_file)},
                **oidc,
            }
        },
    }


async def _post(url: str, change: dict[str, Any]) -> None:
    async with ClientSession() as http, http.post(url, json=change) as answer:
        assert answer.status == 200


async def set_next(provider: Provider, **change: Any) -> None:
    """How the provider's next token answer is changed (provider.mjs, /_test/next)."""
    await _post(f"{provider.issuer}/_test/next", change)


async def rotate_keys(provider: Provider) -> None:
    """The provider publishes a second key (provider.mjs, /_test/rotate)."""
    await _post(f"{provider.issuer}/_test/rotate", {})


async def at_provider(
    authorization: str,
    account: str,
    amr: str | None = None,
    acr: str | None = None,
    deny: bool = False,
    age: int | None = None,
) -> str:
    """The provider's side: the authorization request, its login form posted for `account`;
    returns where the provider sends the browser back (the gateway's callback, absolute). `age`:
    the provider dates the sign-in that many seconds ago (its auth_time)."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:  # its cookies there
        answer = await http.get(authorization, allow_redirects=False)
        assert answer.status in (302, 303), await answer.text()
        interaction = _absolute(authorization, answer.headers["Location"])
        page = await http.get(interaction)
        assert page.status == 200, await page.text()
        form = {"account": account} | ({"amr": amr} if amr else {}) | ({"acr": acr} if acr else {})
        form |= {"deny": "1"} if deny else {}
        form |= {"age": str(age)} if age is not None else {}
        done = await http.post(f"{interaction}/login", data=form, allow_redirects=False)
        assert done.status in (302, 303), await done.text()
        resume = await http.get(
            _absolute(authorization, done.headers["Location"]), allow_redirects=False
        )
        assert resume.status in (302, 303), await resume.text()
        return resume.headers["Location"]


def _absolute(base: str, location: str) -> str:
    if location.startswith("/"):
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}{location}"
    return location


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def sign_in_at_provider(
    client: Any,
    account: str,
    rd: str = "/",
    amr: str | None = None,
    acr: str | None = None,
    age: int | None = None,
) -> str:
    """The gateway's login page (303 to the provider), then the provider's login; returns the
    callback's path and query, for the test to send to the gateway."""
    login = await client.get(f"/.gateway/login?rd={rd}", allow_redirects=False)
    assert login.status == 303, await login.text()
    callback = await at_provider(login.headers["Location"], account, amr, acr, age=age)
    assert urlsplit(callback).path == "/.gateway/oidc/callback", callback
    return path_of(callback)
