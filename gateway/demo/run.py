"""`gateway demo`: the legacy application behind the gateway in intercept mode, ready to try.

A tour of the features: an account for each second-factor method, in companies that enforce 2FA
or let people put it off, with recovery codes, a company admin, a client account and a trusted
network (this machine: for Globex, and for Initech, where it changes nothing for its clients).
Texts, calls and emails go to an outbox (the console and <data-dir>/outbox.log). The settings
are written to <data-dir>/settings.yaml and read back from there, so the operator commands the
banner prints work on the running demo's store.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from aiohttp import web

from gateway.config_errors import ConfigInvalid
from gateway.crypto import generate_key
from gateway.demo.legacy import COOKIE, create_legacy_app
from gateway.server import serve
from gateway.settings import load_settings

ANY_ADDRESS = "0.0.0.0"  # noqa: S104  (only to print a usable URL when listening on it)
# The demo's companies, shipped in the package; a checkout's top-level policies/ links here.
POLICIES = Path(__file__).parent / "policies"
SETTINGS = "settings.yaml"
OUTBOX = "outbox.log"  # text messages, calls and email of the demo, one JSON line each
MOBILE = "+44 7400 123456"  # a UK mobile: texts
LANDLINE = "+44 20 7946 0000"  # a UK landline: the page advises a call (or an app)


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    method: str  # the method this account is there to show (its name in policy files)
    shows: str  # what it shows, for the banner


ACCOUNTS = (
    Account(
        "alice@acme.example",
        "acme-demo-1",
        "totp",
        "Acme enforces 2FA (no putting it off): authenticator app, then 10 recovery codes;\n"
        "Acme's admin: the admin pages at /.gateway/admin/ list Acme's people",
    ),
    Account(
        "carol@acme.example",
        "acme-demo-1",
        "webauthn",
        'passkey: open {passkey_url} and choose "Passkey or security key"\n'
        '(browsers refuse passkeys on an IP address); Acme lets you tick "Remember this\n'
        'browser": the next sign-in there needs the password alone',
    ),
    Account(
        "bob@globex.example",
        "globex-demo-1",
        "sms",
        'Globex offers "Remind me in 48 hours"; text message: choose "Text message (SMS)",\n'
        f"a mobile such as {MOBILE}",
    ),
    Account(
        "dan@globex.example",
        "globex-demo-1",
        "voice",
        f'phone call: choose "Phone call", a landline such as {LANDLINE}',
    ),
    Account(
        "erin@globex.example",
        "globex-demo-1",
        "email",
        'email: choose "Email"; the code goes to erin@globex.example',
    ),
    Account(
        "grace@globex.example",
        "globex-demo-1",
        "totp",
        "authenticator app; this machine is one of Globex's trusted networks: sign out and in\n"
        "again, and no code is asked for 21 days",
    ),
    Account(
        "frank@initech.example",
        "initech-demo-1",
        "totp",
        "a client account (Initech, a client of Globex): authenticator app, asked at every\n"
        "sign-in, though Initech lists this machine as a trusted network too",
    ),
)


class CannotStart(OSError):
    """The demo cannot start; the text says why and what to do (`gateway demo` prints it)."""


def policy_dir() -> Path:
    """The demo's policy directory: in a checkout, its top-level `policies/` (a link to the
    package's copy), so paths in messages are the ones a person edits; else the package's."""
    checkout = Path(__file__).resolve().parents[2] / "policies"
    if checkout.is_dir() and checkout.resolve() == POLICIES.resolve():
        return checkout
    return POLICIES


def _secret_file(path: Path, make: str) -> Path:
    """A throwaway secret, kept when the data directory already has one (a --data-dir used
    again keeps its enrolments readable)."""
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        path.write_text(make + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def demo_settings(
    data_dir: Path, port: int, upstream_port: int, host: str, policies: Path | None = None
) -> dict[str, Any]:
    data_dir = data_dir.resolve()
    session_keys = _secret_file(data_dir / "session-keys", secrets.token_urlsafe(48))
    encryption_key = _secret_file(data_dir / "encryption-key", generate_key())
    return {
        "listen": {"host": host, "port": port},
        "policy_dir": str((policies or policy_dir()).absolute()),
        "store": f"sqlite://{data_dir / 'gateway.db'}",
        "secrets": {
            "session_keys": {"file": str(session_keys)},
            "encryption_key": {"file": str(encryption_key)},
        },
        "senders": {  # codes (and notices) are written to a file and the console, not sent
            "sms": {"kind": "outbox", "path": str(data_dir / OUTBOX)},
            "voice": "sms",
            "email": {"kind": "outbox", "path": str(data_dir / OUTBOX)},
        },
        "applications": {
            "legacy": {
                "upstream": f"http://127.0.0.1:{upstream_port}",
                "hosts": ["*"],
                "identity": "intercept",
                "intercept": {
                    "session_cookies": [COOKIE],
                    "login": {
                        "path": "/login",
                        "method": "POST",
                        "username_field": "username",
                        "success": {"status": [302]},
                    },
                    # the application's own word on who signed in (the strong configuration)
                    "whoami": {"path": "/api/me", "json": "user"},
                    "logout": {"path": "/logout", "methods": ["POST"]},
                },
            }
        },
    }


def write_settings(data_dir: Path, settings: dict[str, Any]) -> Path:
    path = data_dir / SETTINGS
    header = (
        "# Written by `gateway demo` at each start, and read back by it: the settings of the\n"
        "# running demo, for the operator commands (gateway users list -c this-file, ...).\n"
        "# The legacy application's port changes at every start.\n"
    )
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def check_port_free(host: str, port: int) -> None:
    """Refuse a busy address before anything starts, with what to do about it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CannotStart(
                f"{host}:{port} is already in use ({exc.strerror}): stop what listens there "
                "(an earlier demo?), or choose another port with --port N"
            ) from None


def _shown(path: Path) -> str:
    """A path as a person types it here: relative to the current directory when inside it."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def gateway_command() -> list[str]:
    """How this `gateway` was started, to print commands that run the same one."""
    program = Path(sys.argv[0])
    if program.name == "gateway" and program.exists():
        found = shutil.which("gateway")
        if found is not None and Path(found).resolve() == program.resolve():
            return ["gateway"]
        return [_shown(program)]
    return [sys.executable, "-m", "gateway"]


def operator_commands(settings_file: Path, policies: Path, url: str) -> list[list[str]]:
    """The operator commands to try on the running demo (each takes the settings file)."""
    gateway = gateway_command()
    config = ["-c", _shown(settings_file)]
    return [
        [*gateway, "users", "list", *config],
        [*gateway, "users", "show", "bob@globex.example", *config],
        [*gateway, "users", "reset", "bob@globex.example", *config, "--reason", "demo: lost phone"],
        [*gateway, "companies", "status", *config],
        [*gateway, "policy", "check", _shown(policies), *config],
        [
            *gateway,
            "policy",
            "explain",
            *config,
            "--user",
            "frank@initech.example",
            "--ip",
            "127.0.0.1",
            "--url",
            url,
        ],
    ]


def banner(url: str, upstream_port: int, data_dir: Path, policies: Path) -> str:
    url = url.replace(ANY_ADDRESS, "127.0.0.1")
    passkey_url = f"http://localhost:{urlsplit(url).port}/"
    width = max(len(account.user) for account in ACCOUNTS)
    accounts = []
    for account in ACCOUNTS:
        accounts.append(f"  {account.user:<{width}}  password {account.password}")
        shows = account.shows.format(passkey_url=passkey_url).split("\n")
        accounts.extend(f"      {line}" for line in shows)
    commands = operator_commands(data_dir / SETTINGS, policies, url)
    lines = [
        "",
        "2FA gateway demo",
        f"  open      {url}  (passkeys: {passkey_url})",
        f"  behind it Legacy Billing (its own login form) at http://127.0.0.1:{upstream_port}/",
        f"  data      {data_dir}: SQLite store, throwaway secrets, {SETTINGS}",
        f"  policies  {_shown(policies)}/ (edit a file: the running demo applies it within 1 s)",
        "",
        "Accounts: sign in on Legacy Billing's form, then the gateway asks for a second factor",
        *accounts,
        "",
        "Every company offers recovery codes: 10, shown once after the first enrolment.",
        f"{url}internal/ is refused by an access rule ({_shown(policies)}/applications.yaml).",
        "Texts, calls and emails are not sent: each is printed below (gateway.outbox) and",
        f"written to {data_dir / OUTBOX}.",
        "",
        "Operator commands, in another terminal:",
        *(f"  {shlex.join(command)}" for command in commands),
        "",
    ]
    return "\n".join(lines)


async def run_demo(port: int, host: str = "127.0.0.1", data_dir: Path | None = None) -> None:
    check_port_free(host, port)  # before anything starts (or writes to the store)
    data_dir = (data_dir or Path(tempfile.mkdtemp(prefix="gateway-demo-"))).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    policies = policy_dir()
    legacy = web.AppRunner(
        create_legacy_app({account.user: account.password for account in ACCOUNTS}),
        access_log=None,
    )
    await legacy.setup()
    try:
        site = web.TCPSite(legacy, "127.0.0.1", 0)
        await site.start()
        upstream_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        settings_file = write_settings(
            data_dir, demo_settings(data_dir, port, upstream_port, host, policies)
        )
        try:
            settings = load_settings(settings_file)
        except ConfigInvalid as exc:
            raise CannotStart(f"{exc}") from None

        def ready(url: str) -> None:
            print(banner(url, upstream_port, data_dir, policies), flush=True)

        try:
            await serve(settings, ready=ready)
        except ConfigInvalid as exc:  # a policy file edited into a mistake
            raise CannotStart(f"the policy files have mistakes:\n{exc}") from None
    finally:
        await legacy.cleanup()
        sys.stdout.flush()
