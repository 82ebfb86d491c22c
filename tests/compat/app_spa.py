"""Node-RED, from npm, with `adminAuth` (user names and bcrypt hashes in a settings.js written
here), for the compatibility tests.

The editor is a single-page application: it signs in with an XHR (POST /auth/token, an OAuth2
password grant) and keeps the access token it gets back in localStorage; its API calls carry
`Authorization: Bearer`, and its websocket (/comms) authenticates with a first message
{"auth": token}. Node-RED sets no cookie at all.

Installed with `npm install --prefix .compat/node-red-VERSION` at a pinned version (Node-RED 5
needs Node 22; Debian's and this machine's Node is 20), once: a marker file says the install
completed, so a second run costs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, wait_http

VERSION = "4.1.8"
ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / ".compat" / f"node-red-{VERSION}"
MARKER = INSTALL / "complete"
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
    """node-red@VERSION under .compat/, installed from npm unless the marker says a previous
    install completed. Raises RuntimeError when it cannot be installed."""
    if MARKER.exists() and RED_JS.exists():
        return
    if shutil.which(NODE) is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed: apt-get install nodejs npm")
    if INSTALL.exists():
        shutil.rmtree(INSTALL)  # a half-finished install from an interrupted run
    INSTALL.mkdir(parents=True)
    done = subprocess.run(
        ["npm", "install", "--prefix", str(INSTALL), *NPM_OPTIONS, f"node-red@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 or not RED_JS.exists():
        raise RuntimeError(f"npm install node-red@{VERSION} failed:\n{done.stdout}{done.stderr}")
    MARKER.write_text(f"node-red@{VERSION} complete\n")


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
class NodeRed:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, root: Path) -> NodeRed:
        port = free_port()
        settings = write_settings(root / "user", port)
        log = (root / "node-red.log").open("wb")
        process = subprocess.Popen(
            [NODE, str(RED_JS), "--settings", str(settings), "--userDir", str(root / "user")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=dict(os.environ, NODE_ENV="production"),
        )
        log.close()
        red = cls(process, port, root)
        try:
            wait_http(f"{red.url}/auth/login", timeout=60, process=process)
        except Exception:
            red.stop()
            raise RuntimeError((root / "node-red.log").read_text()) from None
        return red

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
