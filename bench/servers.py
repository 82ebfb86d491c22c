"""Starting the servers under test on 127.0.0.1: nginx (upstream and reverse proxy), the upload
sink, the bare aiohttp pass-through, Redis and the gateway, and signing in to the gateway."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pyotp

from bench.procs import NOFILE, Processes

ROOT = Path(__file__).resolve().parent.parent
FRONT_HOST = "app.example.com"  # the shipped front-proxy configurations' host name
CACHE_DIR = "/var/cache/nginx/gateway-auth"  # the shipped auth cache's directory
CADDYFILE = re.compile(r"```caddyfile\n(.*?)```", re.DOTALL)
# no admin endpoint, no certificates: plain HTTP on loopback, as nginx is measured
CADDY_GLOBAL = "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n"
SMALL = "small.html"  # the file every request-rate and latency figure fetches
USER, PASSWORD = "bench@example.com", "bench-password-1"
POLICY = "company: Bench\nmembers:\n  domains: [example.com]\nenforce_2fa: true\n"
# issue 18's per-request features on: remembered browsers allowed, and a step-up bound on every
# path (a fresh real second factor meets it, so each request is judged and passes)
FEATURES = {
    "bench.yaml": POLICY + "remember_browser: 30d\n",
    "applications.yaml": "applications:\n  bench:\n    - paths: ['/**']\n"
    "      access: two_factor\n      reauthenticate_after: 12h\n",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One thing to measure: where it listens, its process (CPU and memory are read from its
    whole process tree), and the headers a request must carry (the session cookie)."""

    name: str
    what: str
    url: str
    pid: int
    headers: dict[str, str] = field(default_factory=dict)
    # processes measured and pinned with it: a front proxy's gateway (forward auth)
    also: tuple[int, ...] = ()

    @property
    def pids(self) -> tuple[int, ...]:
        return (self.pid, *self.also)


def wait_http(url: str, processes: Processes, pid: int, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(pid):
            raise RuntimeError(f"{name} exited before answering:\n{processes.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (our own URL)
                if answer.status == 200:
                    return
        except urllib.error.HTTPError:
            return  # it answers: that is all we wait for
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{name} did not answer {url} within {timeout:.0f}s")


def www(root: Path, body_bytes: int) -> Path:
    """The upstream's files: a 1 KiB page and a `body_bytes` file for the download test."""
    site = root / "www"
    site.mkdir(parents=True, exist_ok=True)
    (site / SMALL).write_text(("<p>bench</p>\n" * 79)[:1023] + "\n")
    with (site / "big.bin").open("wb") as big:
        block = secrets.token_bytes(1 << 20)
        for _ in range(body_bytes >> 20):
            big.write(block)
        big.write(block[: body_bytes & ((1 << 20) - 1)])
    for path in (root, site, *site.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # nginx's workers may run as nobody
    return site


def substitute(text: str, replacements: dict[str, str], times: int = 1) -> str:
    """A shipped file with only these strings changed; each must occur `times` times, so a
    change to the shipped file that the benchmark no longer matches fails loudly."""
    for old, new in replacements.items():
        count = text.count(old)
        if count != times:
            raise RuntimeError(f"{old!r} occurs {count} times in a shipped file, not {times}")
        text = text.replace(old, new)
    return text


def forward_auth_nginx_block(port: int, gateway_port: int, upstream_port: int, cache: Path) -> str:
    """deploy/nginx/gateway.conf as shipped, with only its addresses, ports and cache directory
    changed: nginx proxying to the upstream and asking the gateway with auth_request."""
    return substitute(
        (ROOT / "deploy" / "nginx" / "gateway.conf").read_text(),
        {
            "server 127.0.0.1:9091;": f"server 127.0.0.1:{gateway_port};",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
            "listen 80;": f"listen 127.0.0.1:{port} backlog=8192;",
            "listen 80 default_server;": f"listen 127.0.0.1:{port} default_server;",
            f"server_name {FRONT_HOST};": "server_name 127.0.0.1;",
            CACHE_DIR: str(cache),
        },
    )


def start_caddy(
    processes: Processes, root: Path, port: int, gateway_port: int, upstream_port: int
) -> int:
    """Caddy with the Caddyfile of docs/forward-auth.md, only its addresses changed."""
    [documented] = CADDYFILE.findall((ROOT / "docs" / "forward-auth.md").read_text())
    text = substitute(documented, {f"{FRONT_HOST} {{": f"http://127.0.0.1:{port} {{"})
    text = substitute(text, {"127.0.0.1:9091": f"127.0.0.1:{gateway_port}"}, times=2)
    text = substitute(text, {"127.0.0.1:8000": f"127.0.0.1:{upstream_port}"})
    home = root / "caddy"
    home.mkdir(exist_ok=True)
    config = home / "Caddyfile"
    config.write_text(CADDY_GLOBAL + text)
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    env |= {"PATH": os.environ.get("PATH", ""), "GOMAXPROCS": "1"}
    args = ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]
    return processes.start("caddy", args, env=env)


def _nginx_conf(root: Path, name: str, server: str) -> Path:
    conf = root / f"{name}.conf"
    temp = root / f"{name}-temp"
    temp.mkdir(exist_ok=True)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temps = "\n".join(f"  {kind}_temp_path {temp / kind};" for kind in kinds)
    conf.write_text(
        f"worker_processes 1;\nworker_rlimit_nofile {NOFILE};\n"
        f"error_log {root / name}-error.log warn;\npid {root / name}.pid;\n"
        f"events {{ worker_connections {NOFILE // 2}; }}\n"
        f"http {{\n  access_log off;\n{temps}\n  keepalive_requests 1000000;\n"
        f"  keepalive_timeout 300s;\n  sendfile on;\n  tcp_nopush on;\n{server}\n}}\n"
    )
    return conf


def start_nginx(processes: Processes, root: Path, name: str, server: str) -> int:
    conf = _nginx_conf(root, name, server)
    args = ["nginx", "-p", str(root), "-c", str(conf), "-e", str(root / f"{name}-error.log")]
    args += ["-g", "daemon off; master_process on;"]
    return processes.start(name, args)


def upstream_block(port: int, site: Path, sink_port: int) -> str:
    """The upstream: static files, and /sink passed on (unbuffered) to the upload sink."""
    return (
        f"  server {{\n    listen 127.0.0.1:{port} backlog=8192;\n    root {site};\n"
        f"    location = /sink {{\n      client_max_body_size 0;\n"
        f"      proxy_pass http://127.0.0.1:{sink_port};\n      proxy_http_version 1.1;\n"
        f'      proxy_set_header Connection "";\n      proxy_request_buffering off;\n    }}\n  }}'
    )


def proxy_block(port: int, upstream_port: int) -> str:
    """nginx as a reverse proxy: pooled keep-alive upstream connections, bodies streamed (no
    spooling of uploads or downloads to disk), as the gateway does."""
    return (
        f"  upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}\n"
        f"  server {{\n    listen 127.0.0.1:{port} backlog=8192;\n    client_max_body_size 0;\n"
        f"    location / {{\n      proxy_pass http://up;\n      proxy_http_version 1.1;\n"
        f'      proxy_set_header Connection "";\n      proxy_set_header Host $host;\n'
        f"      proxy_request_buffering off;\n      proxy_max_temp_file_size 0;\n    }}\n  }}"
    )


def start_python(processes: Processes, name: str, module: str, *args: str) -> int:
    return processes.start(name, [sys.executable, "-m", module, *args])


def start_redis(processes: Processes, root: Path, port: int) -> int:
    directory = root / "redis"
    directory.mkdir(exist_ok=True)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--save", "", "--appendonly", "no", "--maxclients", "1000"]
    return processes.start("redis", args)


def wait_redis(port: int, processes: Processes, pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(pid):
            raise RuntimeError(f"redis-server exited:\n{processes.log_tail('redis')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("redis-server did not answer")


def password_hash() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "hash-password", "--stdin"],
        input=PASSWORD,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def gateway_config(
    root: Path,
    name: str,
    port: int,
    store: str,
    upstream: str,
    hash_: str,
    policy: dict[str, str] | None = None,
    forward_auth: bool = False,
) -> Path:
    """Settings in the shape of gateway.example.yaml: portal identity, the default two_factor
    rule, secrets from files. Written as JSON, which YAML reads. `policy`: files of a policy
    directory of this gateway's own, instead of the shared one (one company, no access rules).
    `forward_auth`: as deploy/nginx/gateway.yaml, asked by a front proxy on 127.0.0.1."""
    base = root / "gateway"
    policies = base / ("policies" if policy is None else f"policies-{name}")
    policies.mkdir(parents=True, exist_ok=True)
    for file, text in (policy or {"bench.yaml": POLICY}).items():
        (policies / file).write_text(text)
    users = base / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_}'\n    name: Bench User\n")
    keys = base / "session-keys"
    if not keys.exists():
        keys.write_text(secrets.token_urlsafe(48))
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # as `gateway keygen`
        (base / "encryption-key").write_text(key)
    settings = {
        "listen": {"host": "127.0.0.1", "port": port},
        "policy_dir": str(policies),
        "store": store,
        "secrets": {
            "session_keys": {"file": str(keys)},
            "encryption_key": {"file": str(base / "encryption-key")},
        },
        "applications": {
            "bench": {
                "upstream": upstream,
                "hosts": ["*"],
                "identity": "portal",
                "portal": {"users_file": str(users)},
            }
        },
    }
    if forward_auth:
        settings["trusted_proxies"] = ["127.0.0.1/32"]
        settings["applications"] = {
            "bench": {
                "mode": "forward_auth",
                "hosts": ["127.0.0.1"],
                "identity": "portal",
                "portal": {"users_file": str(users)},
            }
        }
    config = base / f"{name}.yaml"
    config.write_text(json.dumps(settings, indent=2))
    return config


def start_gateway(processes: Processes, name: str, config: Path, workers: int = 1) -> int:
    args = [sys.executable, "-m", "gateway", "run", "-c", str(config)]
    return processes.start(name, args + (["--workers", str(workers)] if workers > 1 else []))


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'data-secret="([A-Z2-7]+)"')


def _find(pattern: re.Pattern[str], html: str, what: str) -> str:
    match = pattern.search(html)
    if match is None:
        raise RuntimeError(f"sign-in: no {what} on the page:\n{html[:2000]}")
    return match.group(1)


async def _sign_in(base: str, secret: str | None) -> tuple[str, str]:
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(base, cookie_jar=jar) as client:
        async with client.get("/.gateway/login?rd=%2F") as page:
            token = _find(CSRF, await page.text(), "CSRF token")
        form = {"csrf_token": token, "username": USER, "password": PASSWORD}
        async with client.post("/.gateway/login?rd=%2F", data=form, allow_redirects=False) as done:
            if done.status != 303:
                raise RuntimeError(f"sign-in: the password was refused ({done.status})")
            step = done.headers["Location"]
        async with client.get(step) as page:
            html = await page.text()
        token = _find(CSRF, html, "CSRF token")
        enrolling = SECRET.search(html)  # the first sign-in to this store enrols the app
        if enrolling is not None:
            secret = enrolling.group(1)
        elif secret is None:
            raise RuntimeError(f"sign-in: neither an enrolment nor a known secret:\n{html[:2000]}")
        code = pyotp.TOTP(secret).now()
        form = {"csrf_token": token, "code": code}
        async with client.post(step, data=form, allow_redirects=False) as done:
            if done.status != 303:
                raise RuntimeError(f"sign-in: the code was refused ({done.status})")
        cookies = "; ".join(f"{c.key}={c.value}" for c in jar)
        async with client.get(f"/{SMALL}", headers={"Cookie": cookies}) as check:
            body = await check.text()
            if check.status != 200 or "<p>bench</p>" not in body:
                raise RuntimeError(f"sign-in: the verified request got {check.status}")
        return cookies, secret


def sign_in(base: str, secret: str | None = None) -> tuple[str, str]:
    """Sign in through the real pages (password, then TOTP: enrolment the first time in a store,
    a challenge with `secret` after); the verified session's Cookie header, and the secret."""
    return asyncio.run(_sign_in(base, secret))


def still_verified(server: Server) -> bool:
    request = urllib.request.Request(f"{server.url}/{SMALL}", headers=server.headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return answer.status == 200 and b"<p>bench</p>" in answer.read()
    except OSError:
        return False
