"""DokuWiki, Debian's package, served by PHP's own web server (`php -S`) from a throwaway
configuration and data directory, for the compatibility tests.

Nothing of DokuWiki is written here: Debian's `dokuwiki` package is installed with apt-get when
missing (as root; otherwise the tests skip), and only its settings, users and access rules are
generated. `/etc/dokuwiki` and `/var/lib/dokuwiki` are never written nor relied on for state: a
PHP file prepended to every request points DokuWiki's configuration directory at our own copy.

Below DokuWiki itself: its intercept settings and the steps through the gateway the tests take
(test_php.py's docstring lists the quirks of DokuWiki they deal with).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, CookieJar

from tests.compat.support import Client, RunningApp, ServerProcess, jar_cookie
from tests.support import enrol_after_login, free_port, intercept_app

DOKUWIKI = Path("/usr/share/dokuwiki")
PHP = Path("/usr/bin/php")
# php8.2-cgi satisfies the `php` package's need for a server API, so that apt does not pull in
# Apache's module; no service is started by any of these.
DEBIAN_PACKAGES = ("php-cli", "php8.2-cgi", "dokuwiki")

USERS = {
    # DokuWiki user names are page names: "alice@example.com" would become "alice_example.com"
    # (and "Alice", "ALICE.", "alicé" all become "alice"), so the accounts are plain names.
    "alice": ("alice-wiki-password", "Alice Example", "alice@example.com"),
    "bob": ("bob-wiki-password", "Bob Example", "bob@example.com"),
}
SESSION_COOKIE = "DokuWiki"  # PHP's session (session_name in inc/init.php)
WHOAMI = r"Logged in as: <bdi>[^<]*</bdi> \(<bdi>([^<]+)</bdi>\)"
PRIVATE_TEXT = "The private plans of the members"

_CONF_FILES = (
    "dokuwiki.php", "acronyms.conf", "entities.conf", "interwiki.conf", "license.php",
    "mediameta.php", "mime.conf", "scheme.conf", "smileys.conf", "wordblock.conf",
    "plugins.php", "plugins.required.php", "manifest.json",
)  # fmt: skip
_DATA_DIRS = (
    "pages", "attic", "media", "media_attic", "media_meta", "meta", "cache", "index", "locks",
    "tmp", "log",
)  # fmt: skip


def ensure_installed(timeout: float = 600) -> None:
    """Debian's DokuWiki and PHP's command line, installed with apt-get when missing (once: a
    second run finds them in place and costs nothing). Raises RuntimeError when they are
    missing and cannot be installed."""
    if (DOKUWIKI / "doku.php").exists() and PHP.exists():
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"DokuWiki is not installed: apt-get install {' '.join(DEBIAN_PACKAGES)}"
        )
    apt_get_install(DEBIAN_PACKAGES, timeout)


def apt_get_install(packages: tuple[str, ...], timeout: float = 600) -> None:
    """apt-get install, waiting while another apt or dpkg holds the lock."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    options = ["-o", "DPkg::Lock::Timeout=300", "-y", "-q", "--no-install-recommends"]
    command = ["apt-get", "install", *options, *packages]
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        locked = "lock" in done.stderr.lower()
        if not locked or time.monotonic() > deadline:
            raise RuntimeError(f"apt-get install failed:\n{done.stdout[-2000:]}{done.stderr}")
        time.sleep(5)


def _php_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _password_hash(password: str) -> str:
    """A bcrypt hash made by PHP itself (DokuWiki's PassHash reads `$2y$`)."""
    script = "echo password_hash($argv[1], PASSWORD_BCRYPT, ['cost' => 4]);"
    done = subprocess.run(
        [str(PHP), "-n", "-r", script, password], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def write_site(root: Path) -> Path:
    """DokuWiki's configuration and data under `root`; returns the file to prepend to every
    request (it names the configuration directory)."""
    conf = root / "conf"
    data = root / "data"
    conf.mkdir(parents=True)
    for name in _CONF_FILES:
        source = Path("/etc/dokuwiki") / name
        if source.exists():
            shutil.copyfile(source, conf / name)
    for name in _DATA_DIRS:
        (data / name).mkdir(parents=True)
    settings = {
        "title": "Compat Wiki",
        "savedir": str(data),
        "useacl": 1,
        "authtype": "authplain",
        "superuser": "@admin",
        "updatecheck": 0,  # no network: no release check,
        "remote": 0,  # no XML-RPC / JSON-RPC API (its dokuwiki.login is a second login)
        "rememberme": 1,
        "securecookie": 1,  # Debian's default; puts the port into the DW cookie's name
        "userewrite": 0,
        "send404": 0,
        "target": {},
        "mailfrom": "",
        "notify": "",
        "subscribers": 0,
        "registernotify": "",
        "disableactions": "register,resendpwd",  # both would send mail
        "dnslookups": 0,
        "usedraft": 0,
        "locktime": 900,
    }
    lines = ["<?php"]
    for key, value in settings.items():
        if isinstance(value, int):
            lines.append(f"$conf[{_php_string(key)}] = {value};")
        elif isinstance(value, str):
            lines.append(f"$conf[{_php_string(key)}] = {_php_string(value)};")
    (conf / "local.php").write_text("\n".join(lines) + "\n")
    plugins = ["<?php"] + [
        f"$plugins[{_php_string(name)}] = 0;"
        for name in ("popularity", "extension", "testing", "authad", "authldap", "authpdo")
    ]
    (conf / "plugins.local.php").write_text("\n".join(plugins) + "\n")
    users = ["# login:passwordhash:Real Name:email:groups"]
    for name, (password, real, email) in USERS.items():
        groups = "admin,user" if name == "bob" else "user"
        users.append(f"{name}:{_password_hash(password)}:{real}:{email}:{groups}")
    (conf / "users.auth.php").write_text("\n".join(users) + "\n")
    (conf / "acl.auth.php").write_text(
        "*\t@ALL\t1\n*\t@user\t8\nprivate:*\t@ALL\t0\nprivate:*\t@user\t8\n"
    )
    (data / "pages" / "start.txt").write_text("====== Compat Wiki ======\n\nHello.\n")
    (data / "pages" / "private").mkdir()
    (data / "pages" / "private" / "plans.txt").write_text(f"{PRIVATE_TEXT}.\n")
    prepend = root / "prepend.php"
    prepend.write_text(
        "<?php\n"
        f"define('DOKU_CONF', {_php_string(str(conf) + '/')});\n"
        f"define('DOKU_MAIN_CONF', {_php_string(str(conf) + '/')});\n"
    )
    (root / "sessions").mkdir()
    return prepend


def auth_cookie_name(port: int, base: str = "/") -> str:
    """The name of DokuWiki's login cookie: "DW" + md5(base path + server port), the port
    because `securecookie` is on (inc/init.php). Under `php -S` the port is the one PHP listens
    on, whatever the Host header says."""
    return "DW" + hashlib.md5(f"{base}{port}".encode()).hexdigest()  # noqa: S324


@dataclass
class DokuWiki(RunningApp):
    """A running DokuWiki: `php -S 127.0.0.1:port` in DokuWiki's directory."""

    root: Path

    @property
    def auth_cookie(self) -> str:
        return auth_cookie_name(self.port)

    @classmethod
    def start(cls, root: Path) -> DokuWiki:
        prepend = write_site(root)
        port = free_port()
        ini = {
            "auto_prepend_file": str(prepend),
            "session.save_path": str(root / "sessions"),
            "session.gc_probability": "0",
            "display_errors": "stderr",
            "log_errors": "0",
            "error_reporting": "E_ALL & ~E_DEPRECATED & ~E_STRICT",
        }
        options = [arg for key, value in ini.items() for arg in ("-d", f"{key}={value}")]
        server = ServerProcess(
            [str(PHP), *options, "-S", f"127.0.0.1:{port}", "-t", str(DOKUWIKI)],
            port, root / "php.log", "/doku.php?id=start", cwd=DOKUWIKI,
            env=dict(os.environ, PHP_CLI_SERVER_WORKERS="4"), timeout=20,
            own_group=True,  # PHP_CLI_SERVER_WORKERS forks workers: stopped with it
        )  # fmt: skip
        return cls(server, root)


# --- steps through the gateway, shared by test_php.py and test_php_attacks.py ---------------

ALICE = ("alice", USERS["alice"][0])
BOB = ("bob", USERS["bob"][0])
POLICIES = {
    "wiki.yaml": ("company: Wiki Company\nmembers:\n  users: [alice, bob]\nenforce_2fa: true\n")
}
LOGIN_FORM = re.compile(r'<form id="dw__login" action="([^"]*)"(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
SIGNED_IN = re.compile(WHOAMI)


def wiki_app(wiki: DokuWiki, **intercept: Any) -> dict[str, Any]:
    """DokuWiki's intercept settings (tests/compat/NOTES-php-spa.md explains each)."""
    settings: dict[str, Any] = {
        # DokuWiki's form posts to /doku.php?id=PAGE with do=login in the body
        "login": {
            "path": "/doku.php",
            "method": "POST",
            "fields": {"do": "login"},
            "username_field": "u",
            "success": {"status": [302]},
        },
        "session_cookies": ["DokuWiki", "DW*"],
        "whoami": {"path": "/doku.php?id=start", "pattern": WHOAMI},
        # every page view is GET /doku.php: only do=logout in the query is the sign-out
        "logout": {"path": "/doku.php", "methods": ["GET"], "query": {"do": "logout"}},
        # DokuWiki signs in from u and p on any request, in the query or the body
        "credentials": {"query": ["u", "p"], "fields": ["u", "p"]},
    }
    settings.update(intercept)
    return intercept_app(wiki.url, intercept=settings)


async def gateway(make_gateway: Any, wiki: DokuWiki, **intercept: Any) -> Client:
    return await make_gateway({"wiki": wiki_app(wiki, **intercept)}, policies=POLICIES)


def signed_in_as(page: str) -> str | None:
    match = SIGNED_IN.search(page)
    return match.group(1) if match else None


def form_fields(form_html: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(form_html)}


async def login_form(client: Client, page: str = "start") -> tuple[str, dict[str, str]]:
    """DokuWiki's login page as a browser gets it: the form's action and hidden fields."""
    answer = await client.get(f"/doku.php?id={page}&do=login")
    assert answer.status == 200
    match = LOGIN_FORM.search(await answer.text())
    assert match, "DokuWiki's login form"
    return html.unescape(match.group(1)), form_fields(match.group(2))


async def wiki_login(client: Client, user: str, password: str, *, remember: bool = False) -> Any:
    """Sign in on DokuWiki's form exactly as a browser sends it: to the form's action
    (/doku.php?id=start), with its hidden `sectok`, `id` and `do=login` and the user's `u`, `p`
    (and `r` for "Remember me") in the body."""
    action, fields = await login_form(client)
    assert action == "/doku.php?id=start" and fields.get("do") == "login", (action, fields)
    fields.update(u=user, p=password)
    if remember:
        fields["r"] = "1"
    return await client.post(action, data=fields, allow_redirects=False)


async def signed_in(client: Client, user: tuple[str, str] = ALICE) -> str:
    """Password on DokuWiki's form, then enrolment; returns the TOTP secret."""
    return await enrol_after_login(client, await wiki_login(client, *user))


async def who(client: Client, page: str = "start") -> str | None:
    answer = await client.get(f"/doku.php?id={page}", allow_redirects=False)
    return signed_in_as(await answer.text())


async def direct_cookies(wiki: DokuWiki, user: tuple[str, str] = ALICE) -> dict[str, str]:
    """A signed-in cookie pair got from DokuWiki itself, not through the gateway (what an
    attacker who stole them, or who knows the password and reaches DokuWiki, holds)."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as direct:
        await direct.get(f"{wiki.url}/doku.php?id=start&do=login")
        signed = await direct.post(
            f"{wiki.url}/doku.php?id=start",
            data={"do": "login", "u": user[0], "p": user[1], "id": "start"},
            allow_redirects=False,
        )
        signed.release()
        jar = {morsel.key: str(morsel.value) for morsel in direct.cookie_jar}
        page = await direct.get(f"{wiki.url}/doku.php?id=start")
        assert signed_in_as(await page.text()) == user[0], "the cookies sign in directly"
    assert set(jar) == {"DokuWiki", wiki.auth_cookie}
    return jar


def unique_page() -> str:
    return f"compat:page{secrets.token_hex(4)}"


async def not_signed_in(client: Client, wiki: DokuWiki) -> None:
    """Neither the browser nor DokuWiki holds a session for anyone."""
    assert jar_cookie(client, wiki.auth_cookie) is None
    page = await client.get("/doku.php?id=private:plans", allow_redirects=False)
    text = await page.text()
    assert signed_in_as(text) is None
    assert PRIVATE_TEXT not in text
