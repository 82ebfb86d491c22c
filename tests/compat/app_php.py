"""DokuWiki, Debian's package, served by PHP's own web server (`php -S`) from a throwaway
configuration and data directory, for the compatibility tests.

Nothing of DokuWiki is written here: Debian's `dokuwiki` package is installed with apt-get when
missing (as root; otherwise the tests skip), and only its settings, users and access rules are
generated. `/etc/dokuwiki` and `/var/lib/dokuwiki` are never written nor relied on for state: a
PHP file prepended to every request points DokuWiki's configuration directory at our own copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, wait_http

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
class DokuWiki:
    """A running DokuWiki: `php -S 127.0.0.1:port` in DokuWiki's directory."""

    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_cookie(self) -> str:
        return auth_cookie_name(self.port)

    @classmethod
    def start(cls, root: Path) -> DokuWiki:
        prepend = write_site(root)
        port = free_port()
        log = (root / "php.log").open("wb")
        ini = {
            "auto_prepend_file": str(prepend),
            "session.save_path": str(root / "sessions"),
            "session.gc_probability": "0",
            "display_errors": "stderr",
            "log_errors": "0",
            "error_reporting": "E_ALL & ~E_DEPRECATED & ~E_STRICT",
        }
        options = [arg for key, value in ini.items() for arg in ("-d", f"{key}={value}")]
        process = subprocess.Popen(
            [str(PHP), *options, "-S", f"127.0.0.1:{port}", "-t", str(DOKUWIKI)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=DOKUWIKI,
            env=dict(os.environ, PHP_CLI_SERVER_WORKERS="4"),
            start_new_session=True,  # its workers are stopped with it, as one process group
        )
        log.close()
        wiki = cls(process, port, root)
        try:
            wait_http(f"{wiki.url}/doku.php?id=start", timeout=20, process=process)
        except Exception:
            wiki.stop()
            raise RuntimeError((root / "php.log").read_text()) from None
        return wiki

    def stop(self) -> None:
        """SIGTERM to the server and its workers (PHP_CLI_SERVER_WORKERS forks them; they
        outlive a parent stopped alone), SIGKILL after 10 seconds."""
        group = self.process.pid  # its own session: the group id is its pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.killpg(group, signal.SIGKILL)
