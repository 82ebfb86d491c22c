"""`gateway demo`: the legacy application behind the gateway in intercept mode, ready to try."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from aiohttp import web

from gateway.crypto import generate_key
from gateway.demo.legacy import COOKIE, create_legacy_app
from gateway.server import serve
from gateway.settings import settings_from_dict

ANY_ADDRESS = "0.0.0.0"  # noqa: S104  (only to print a usable URL when listening on it)
POLICIES = Path(__file__).parent / "policies"
OUTBOX = "outbox.log"  # text messages, calls and email of the demo, one JSON line each
ACCOUNTS = {
    "alice@acme.example": "acme-demo-1",
    "bob@globex.example": "globex-demo-1",
}


def _write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def demo_settings(data_dir: Path, port: int, upstream_port: int, host: str) -> dict[str, object]:
    import secrets

    session_keys = _write_secret(data_dir / "session-keys", secrets.token_urlsafe(48))
    encryption_key = _write_secret(data_dir / "encryption-key", generate_key())
    return {
        "listen": {"host": host, "port": port},
        "policy_dir": str(POLICIES),
        "store": f"sqlite://{(data_dir / 'gateway.db').resolve()}",
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


async def run_demo(port: int, host: str = "127.0.0.1", data_dir: Path | None = None) -> None:
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    legacy = web.AppRunner(create_legacy_app(ACCOUNTS), access_log=None)
    await legacy.setup()
    site = web.TCPSite(legacy, "127.0.0.1", 0)
    await site.start()
    upstream_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = settings_from_dict(
        demo_settings(data_dir, port, upstream_port, host), source=data_dir / "demo.yaml"
    )

    def banner(url: str) -> None:
        lines = [
            "",
            "2FA gateway demo",
            f"  open           {url.replace(ANY_ADDRESS, '127.0.0.1')}",
            f"  application    Legacy Billing at http://127.0.0.1:{upstream_port}/ (behind it)",
            f"  data           {data_dir} (SQLite store, throwaway secrets)",
            "  accounts       "
            + "\n                 ".join(
                f"{user}  password: {password}" for user, password in ACCOUNTS.items()
            ),
            "  second factor  any authenticator app: scan the QR code or type the secret shown;",
            "                 Globex also offers text message, phone call and email codes:",
            f"                 they are not sent, but written to {data_dir / OUTBOX} and below;",
            f"                 passkeys need a host name: http://localhost:{port}/",
            "",
        ]
        print("\n".join(lines), flush=True)

    try:
        await serve(settings, ready=banner)
    finally:
        await legacy.cleanup()
        sys.stdout.flush()
