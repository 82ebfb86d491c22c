"""Deployment settings (listen address, store, secrets, applications) read from one YAML file."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import SplitResult, urlsplit

from gateway.durations import parse_duration
from gateway.factors.phone import valid_region
from gateway.intercept_settings import Intercept, read_intercept
from gateway.policy.model import IPNetwork
from gateway.yamlsource import (
    ConfigInvalid,
    Document,
    KeyPath,
    Reader,
    describe,
    load_yaml_file,
)
from gateway.yamlsource import setting_name as _name
from gateway.yamlsource import token as _token

Identity = Literal["intercept", "portal", "header"]
SenderKind = Literal["http", "webhook", "smtp", "outbox"]
CookieSecure = Literal["auto", "always", "never"]

DEFAULT_STORE = "sqlite:///var/lib/gateway/gateway.db"
_STORE_SCHEMES = (
    "sqlite:///",
    "redis://",
    "rediss://",
    "redis+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)
_IDENTITIES: tuple[Identity, ...] = ("intercept", "portal", "header")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TOP_KEYS = {
    "listen", "policy_dir", "store", "secrets", "trusted_proxies", "applications",
    "cookie_secure", "session_cookie", "log_level", "senders", "audit", "metrics",
}  # fmt: skip
_APP_KEYS = {
    "upstream", "hosts", "identity", "intercept", "portal", "header", "preserve_host", "timeouts",
    "mode", "max_connections",
}  # fmt: skip
_APP_MODES = ("proxy", "forward_auth")
# meaningless in forward_auth mode
_PROXY_ONLY_KEYS = ("upstream", "preserve_host", "timeouts", "max_connections")
# senders: which kinds serve which channel, and the settings each kind takes
_CHANNEL_KINDS: dict[str, tuple[SenderKind, ...]] = {
    "sms": ("http", "webhook", "outbox"),
    "voice": ("http", "webhook", "outbox"),
    "email": ("smtp", "outbox"),
}
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("base_url", "account_sid", "auth_token", "from", "timeout"),
    "webhook": ("url", "token", "timeout"),
    "smtp": (
        "host", "port", "starttls", "tls", "username", "password", "from", "ca_file", "timeout",
    ),
    "outbox": ("path",),
}  # fmt: skip
DEFAULT_PROVIDER = "https://api.twilio.com"
AuditTo = Literal["stdout", "file"]
# who may read /.gateway/metrics unless `metrics.networks` says otherwise: this machine only
LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"(?:\*|{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


class SettingsError(Exception):
    """A setting cannot be used at run time, such as a secret that cannot be read."""


@dataclass(frozen=True)
class SecretSource:
    env: str | None = None
    file: Path | None = None

    def read(self) -> str:
        """The secret from the environment variable, else from the file, stripped."""
        if self.env and os.environ.get(self.env, "").strip():
            return os.environ[self.env].strip()
        if self.file is None:
            where = f"the environment variable {self.env} is not set" if self.env else None
            raise SettingsError(where or "no environment variable or file is given for a secret")
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise SettingsError(f"cannot read the secret file {self.file}: {reason}") from None
        if not value:
            raise SettingsError(f"the secret file {self.file} is empty")
        return value


@dataclass(frozen=True)
class Secrets:
    session_keys: SecretSource
    encryption_key: SecretSource

    def read_session_keys(self) -> tuple[str, ...]:
        """The cookie signing keys: the first signs, all are accepted."""
        keys = tuple(self.session_keys.read().replace(",", " ").split())
        if not keys or any(len(key) < 32 for key in keys):
            raise SettingsError(
                "each session key must be at least 32 characters long; "
                "make one with `gateway keygen`"
            )
        return keys

    def read_encryption_key(self) -> str:
        """The key for data at rest: urlsafe base64 of 32 bytes."""
        key = self.encryption_key.read()
        try:
            size = len(base64.urlsafe_b64decode(key.encode("ascii")))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            size = -1
        if size != 32:
            raise SettingsError("the encryption key must be 32 bytes written in urlsafe base64")
        return key


@dataclass(frozen=True)
class Listen:
    """Where to listen, and what a client connection may take (enforced in gateway.protocol)."""

    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    header_timeout: float = 10.0  # seconds for a whole request head
    body_timeout: float = 60.0  # seconds a request body may stall between two pieces
    max_body_size: int | None = None  # bytes; None: no limit
    max_header_size: int = 8190  # bytes in the request line and in each header line
    max_headers: int = 128


@dataclass(frozen=True)
class Portal:
    users_file: Path


@dataclass(frozen=True)
class HeaderIdentity:
    user_header: str = "Remote-User"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 300.0


@dataclass(frozen=True)
class Application:
    name: str
    upstream: str
    hosts: tuple[str, ...]
    identity: Identity
    intercept: Intercept | None = None
    portal: Portal | None = None
    header: HeaderIdentity | None = None
    preserve_host: bool = True
    timeouts: Timeouts = Timeouts()
    # requests (WebSockets included) this gateway process has open to the application at once:
    # a stalled application cannot take every descriptor; beyond it, requests wait up to the
    # connect timeout, then get the 502 page
    max_connections: int = 512
    # `mode: forward_auth`: nginx, Traefik or Caddy in front call the gateway's verify endpoint
    # and do the proxying themselves; there is no upstream (see docs/forward-auth.md)
    forward_auth: bool = False


@dataclass(frozen=True)
class SenderConfig:
    """How codes (and notices) go out on one channel; each kind reads its own fields."""

    kind: SenderKind
    base_url: str = DEFAULT_PROVIDER  # http: the provider API (Twilio or compatible)
    account_sid: SecretSource | None = None  # http
    auth_token: SecretSource | None = None  # http
    sender: str = ""  # "from": the calling number (http) or the address (smtp)
    url: str = ""  # webhook
    token: SecretSource | None = None  # webhook: sent as a bearer token
    host: str = ""  # smtp
    port: int = 587
    starttls: bool = True
    tls: bool = False  # smtp: TLS from the first byte (port 465)
    username: str = ""
    password: SecretSource | None = None
    ca_file: Path | None = None  # smtp: trust this CA bundle instead of the system's
    path: Path | None = None  # outbox: the file messages are appended to
    timeout: float = 10.0


@dataclass(frozen=True)
class SendersConfig:
    sms: SenderConfig | None = None
    voice: SenderConfig | None = None
    email: SenderConfig | None = None
    default_region: str = "US"  # for phone numbers typed without a country code


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit log's JSON lines go: standard output, or appended to a file."""

    to: AuditTo = "stdout"
    path: Path | None = None  # with to: file


@dataclass(frozen=True)
class MetricsSettings:
    """Who may read /.gateway/metrics: client addresses (as gateway.clientip computes them)."""

    networks: tuple[IPNetwork, ...] = LOOPBACK


@dataclass(frozen=True)
class Settings:
    source: Path
    listen: Listen
    policy_dir: Path
    store: str
    secrets: Secrets
    trusted_proxies: tuple[IPNetwork, ...] = ()
    applications: tuple[Application, ...] = ()
    cookie_secure: CookieSecure = "auto"
    session_cookie: str = "gateway_session"
    log_level: str = "info"
    senders: SendersConfig = SendersConfig()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()


def load_settings(path: Path) -> Settings:
    """Read and check the settings file; raises ConfigInvalid listing all errors."""
    return _validate(load_yaml_file(path), path)


def settings_from_dict(data: Mapping[str, Any], source: Path) -> Settings:
    """The same checks for settings built in memory; errors carry line 0."""
    return _validate(Document(str(source), dict(data)), source)


def _validate(document: Document, source: Path) -> Settings:
    reader = Reader(document)
    if document.data is None and document.errors:
        raise ConfigInvalid(reader.errors)
    if not isinstance(document.data, dict):
        reader.error((), "the settings file must be a mapping such as listen: and applications:")
        raise ConfigInvalid(reader.errors)
    settings = _settings(reader, source)
    if reader.errors:
        raise ConfigInvalid(sorted(reader.errors, key=lambda error: error.line))
    return settings


def _settings(r: Reader, source: Path) -> Settings:
    base = source.parent
    r.unknown_keys((), _TOP_KEYS)
    store = r.string(("store",), DEFAULT_STORE, required=r.has(("store",))).strip()
    if not _store_ok(store):
        example = f'"{DEFAULT_STORE}" or "redis://localhost:6379/0"'
        r.error(("store",), f"store must be a sqlite:/// or redis:// URL such as {example}")
    r.mapping(("secrets",), required=True)
    r.unknown_keys(("secrets",), ("session_keys", "encryption_key"))
    secrets = Secrets(
        _secret(r, ("secrets", "session_keys"), base),
        _secret(r, ("secrets", "encryption_key"), base),
    )
    trusted_proxies = r.networks(("trusted_proxies",))
    session_cookie = _token(r, ("session_cookie",), "a cookie name", "gateway_session")
    applications = _applications(r, base, bool(trusted_proxies), session_cookie)
    return Settings(
        source=source,
        listen=_listen(r, base),
        policy_dir=_path(r, ("policy_dir",), base) or base / "policies",
        store=store,
        secrets=secrets,
        trusted_proxies=trusted_proxies,
        applications=applications,
        cookie_secure=cast(
            CookieSecure, r.choice(("cookie_secure",), ("auto", "always", "never"), "auto")
        ),
        session_cookie=session_cookie,
        log_level=r.choice(("log_level",), _LOG_LEVELS, "info"),
        senders=_senders(r, base),
        audit=_audit(r, base),
        metrics=_metrics(r),
    )


def _store_ok(url: str) -> bool:
    if url.startswith("sqlite:///"):
        return len(url) > len("sqlite:///")
    return url.startswith(_STORE_SCHEMES) and bool(urlsplit(url).netloc)


def _path(r: Reader, path: KeyPath, base: Path, *, required: bool = False) -> Path | None:
    """A file system path; a relative one is taken from the settings file's directory."""
    value = r.value(path)
    if isinstance(value, os.PathLike):
        return base / Path(value)
    text = r.string(path, required=required or r.has(path)).strip()
    return base / text if text else None


def _listen(r: Reader, base: Path) -> Listen:
    r.mapping(("listen",))
    r.unknown_keys(("listen",), ("host", "port", "tls_cert", "tls_key", *_LIMIT_KEYS))
    cert = _path(r, ("listen", "tls_cert"), base)
    key = _path(r, ("listen", "tls_key"), base)
    if (cert is None) != (key is None):
        message = "listen.tls_cert and listen.tls_key go together: give both or neither"
        r.error(("listen",), message, at_key=True)
    host = r.string(("listen", "host"), "127.0.0.1", required=r.has(("listen", "host")))
    default = Listen()
    return Listen(
        host.strip(),
        r.integer(("listen", "port"), 8080, 0, 65535),
        cert,
        key,
        header_timeout=_timeout(r, ("listen", "header_timeout"), default.header_timeout),
        body_timeout=_timeout(r, ("listen", "body_timeout"), default.body_timeout),
        max_body_size=_size(r, ("listen", "max_body_size"), 1, 1 << 40, "10MB"),
        max_header_size=_size(r, ("listen", "max_header_size"), 1024, 1 << 20, "16KB")
        or default.max_header_size,
        max_headers=r.integer(("listen", "max_headers"), default.max_headers, 16, 10_000),
    )


_LIMIT_KEYS = ("header_timeout", "body_timeout", "max_body_size", "max_header_size", "max_headers")
_MAX_TIMEOUT = 3600.0
_SIZE = re.compile(r"([0-9]+)\s*(?:([kmg])(?:i?b)?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _timeout(r: Reader, path: KeyPath, default: float) -> float:
    """Seconds (fractions allowed) or a duration such as "10s", above zero and at most an hour."""
    value = r.value(path)
    if value is None:
        return default
    try:
        seconds = value if isinstance(value, float) else parse_duration(value).total_seconds()
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= _MAX_TIMEOUT:
        message = f'{_name(path)} must be a duration above 0 and at most 1h, such as "10s" or "1m"'
        r.error(path, f"{message}, not {describe(value)}")
        return default
    return seconds


def _size(r: Reader, path: KeyPath, minimum: int, maximum: int, example: str) -> int | None:
    """Bytes, or a size such as "512k", "10MB" or "1GiB" (k, m, g: 1024, 1024², 1024³); None
    when absent or wrong."""
    value = r.value(path)
    if value is None:
        return None
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size: int | None = value
    elif match:
        size = int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    else:
        size = None
    if size is None or not minimum <= size <= maximum:
        limits = f"from {_bytes(minimum)} to {_bytes(maximum)}"
        message = f'{_name(path)} must be a size {limits} such as "{example}" or a number of bytes'
        r.error(path, f"{message}, not {describe(value)}")
        return None
    return size


def _bytes(size: int) -> str:
    for unit, factor in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return "1 byte" if size == 1 else f"{size} bytes"


def _secret(r: Reader, path: KeyPath, base: Path) -> SecretSource:
    if isinstance(r.value(path), str | int | float):  # never echo what may be the secret itself
        where = f"{_name(path)} must say where the secret is kept ({{env: NAME}} or {{file: path}})"
        r.error(path, f"{where}, not hold the secret itself")
        return SecretSource()
    if r.mapping(path, required=True) is None:
        return SecretSource()
    r.unknown_keys(path, ("env", "file"))
    before = len(r.errors)
    env = r.string((*path, "env"), required=r.has((*path, "env"))).strip() or None
    if env is not None and not _ENV_NAME.fullmatch(env):
        r.error((*path, "env"), f'"{env}" is not an environment variable name')
    file = _path(r, (*path, "file"), base)
    if len(r.errors) == before and env is not None and file is not None:
        r.error(path, f"{_name(path)} takes env: or file:, not both", at_key=True)
    elif len(r.errors) == before and env is None and file is None:
        message = f"{_name(path)} needs env: (a variable name) or file: (a path)"
        r.error(path, message, at_key=True)
    return SecretSource(env, file)


def _applications(
    r: Reader, base: Path, behind_proxy: bool, session_cookie: str
) -> tuple[Application, ...]:
    apps = r.mapping(("applications",), required=True)
    if apps == {}:
        r.error(("applications",), "applications must list at least one application")
    claimed: dict[str, str] = {}
    found: list[Application] = []
    for name in apps or {}:
        app = _application(r, name, base, claimed)
        if app is None:
            continue
        found.append(app)
        where: KeyPath = ("applications", name)
        if app.forward_auth and not behind_proxy:
            message = (
                f'application "{name}" is in forward_auth mode, whose verify endpoint answers only '
                "the proxy in front: list that proxy under trusted_proxies"
            )
            r.error((*where, "mode"), message)
        elif app.identity == "header" and not behind_proxy:
            message = (
                f'application "{name}" takes the user name from a request header, which is only '
                "safe behind a proxy that sets it: list that proxy under trusted_proxies"
            )
            r.error((*where, "identity"), message)
        if app.intercept is not None and app.intercept.session_cookies.matches(session_cookie):
            message = f'"{session_cookie}" is the gateway\'s own cookie (session_cookie)'
            r.error((*where, "intercept", "session_cookies"), message)
    return tuple(found)


def _application(r: Reader, name: str, base: Path, claimed: dict[str, str]) -> Application | None:
    p: KeyPath = ("applications", name)
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _APP_KEYS)
    if not _APP_NAME.fullmatch(name):
        r.error(p, f'"{name}" cannot name an application: use letters, digits, ".", "-", "_"')
    identity = r.choice((*p, "identity"), _IDENTITIES, required=True)
    forward_auth = r.choice((*p, "mode"), _APP_MODES, "proxy") == "forward_auth"
    if forward_auth:
        _forward_auth_checks(r, p, identity)
    for other in _IDENTITIES:
        if identity and other != identity and r.has((*p, other)):
            message = f'{_name((*p, other))} is given but identity is "{identity}"'
            r.error((*p, other), message, at_key=True)
    hosts: list[str] = []
    for item, host in r.strings((*p, "hosts"), required=True):
        host = host.lower()
        if not _HOST.fullmatch(host):
            r.error(
                item, f'"{host}" is not a host name such as "wiki.example" or "wiki.example:8443"'
            )
        elif claimed.setdefault(host, name) != name:
            r.error(item, f'the host "{host}" is already served by application "{claimed[host]}"')
        elif host not in hosts:
            hosts.append(host)
    return Application(
        name=name,
        upstream="" if forward_auth else _upstream(r, (*p, "upstream")),
        hosts=tuple(hosts),
        identity=cast(Identity, identity or "intercept"),
        intercept=read_intercept(r, (*p, "intercept")) if identity == "intercept" else None,
        portal=_portal(r, (*p, "portal"), base) if identity == "portal" else None,
        header=_header(r, (*p, "header")) if identity == "header" else None,
        preserve_host=r.boolean((*p, "preserve_host"), True),
        timeouts=_timeouts(r, (*p, "timeouts")),
        max_connections=r.integer((*p, "max_connections"), 512, 1, 100_000),
        forward_auth=forward_auth,
    )


def _forward_auth_checks(r: Reader, p: KeyPath, identity: str) -> None:
    """The proxy in front forwards to the application, so the gateway has no upstream; and it
    never sees the application's traffic, so intercept mode cannot work."""
    for key in _PROXY_ONLY_KEYS:
        if r.has((*p, key)):
            message = (
                f"{_name((*p, key))} is not used in forward_auth mode: the proxy in front "
                "forwards to the application itself (remove it, or use mode: proxy)"
            )
            r.error((*p, key), message, at_key=True)
    if identity == "intercept":
        message = (
            'identity "intercept" needs the application\'s traffic to pass through the gateway, '
            'which forward_auth mode does not do: use identity "portal" or "header"'
        )
        r.error((*p, "identity"), message)


def _upstream(r: Reader, path: KeyPath) -> str:
    url = r.string(path, required=True).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:  # not echoed: it may be secret
        r.error(path, f"{_name(path)} must not hold a user name or password")
    elif parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
        example = '"http://127.0.0.1:8000"'
        r.error(path, f'{_name(path)} must be an http(s) URL such as {example}, not "{url}"')
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        r.error(path, f'{_name(path)} must not have a query string or fragment, not "{url}"')
    return url.rstrip("/")


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        return False
    return True


def _portal(r: Reader, p: KeyPath, base: Path) -> Portal | None:
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, ("users_file",))
    return Portal(_path(r, (*p, "users_file"), base, required=True) or Path())


def _header(r: Reader, p: KeyPath) -> HeaderIdentity:
    r.mapping(p)
    r.unknown_keys(p, ("user_header",))
    return HeaderIdentity(_token(r, (*p, "user_header"), "a header name", "Remote-User"))


def _timeouts(r: Reader, p: KeyPath) -> Timeouts:
    r.mapping(p)
    r.unknown_keys(p, ("connect", "read"))
    return Timeouts(_seconds(r, (*p, "connect"), 5.0), _seconds(r, (*p, "read"), 300.0))


def _senders(r: Reader, base: Path) -> SendersConfig:
    p: KeyPath = ("senders",)
    r.mapping(p)
    r.unknown_keys(p, ("sms", "voice", "email", "default_region"))
    region = r.string((*p, "default_region"), "US").strip().upper()
    if not valid_region(region):
        r.error((*p, "default_region"), f'"{region}" is not a region code such as "US" or "GB"')
    sms = _sender(r, (*p, "sms"), "sms", base)
    reuse = r.value((*p, "voice")) == "sms"  # `voice: sms`: the SMS sender places calls too
    voice = sms if reuse else _sender(r, (*p, "voice"), "voice", base)
    email = _sender(r, (*p, "email"), "email", base)
    return SendersConfig(sms=sms, voice=voice, email=email, default_region=region)


def _sender(r: Reader, p: KeyPath, channel: str, base: Path) -> SenderConfig | None:
    if not r.has(p) or r.value(p) is None:
        return None
    if r.mapping(p) is None:
        return None
    kinds = _CHANNEL_KINDS[channel]
    kind = cast(SenderKind, r.choice((*p, "kind"), kinds, required=True))
    if not kind:
        return None
    r.unknown_keys(p, ("kind", *_KIND_KEYS[kind]))
    timeout = _seconds(r, (*p, "timeout"), 10.0)
    if kind == "http":
        return SenderConfig(
            kind,
            base_url=_service_url(r, (*p, "base_url"), DEFAULT_PROVIDER),
            account_sid=_secret(r, (*p, "account_sid"), base),
            auth_token=_secret(r, (*p, "auth_token"), base),
            sender=r.string((*p, "from"), required=True).strip(),
            timeout=timeout,
        )
    if kind == "webhook":
        token = _secret(r, (*p, "token"), base) if r.has((*p, "token")) else None
        url = _service_url(r, (*p, "url"), "", required=True)
        return SenderConfig(kind, url=url, token=token, timeout=timeout)
    if kind == "smtp":
        password = _secret(r, (*p, "password"), base) if r.has((*p, "password")) else None
        username = r.string((*p, "username"), required=r.has((*p, "username"))).strip()
        if (password is None) != (not username):
            message = f"{_name(p)}.username and {_name(p)}.password go together"
            r.error(p, message, at_key=True)
        tls = r.boolean((*p, "tls"), False)
        starttls = r.boolean((*p, "starttls"), not tls)
        if tls and starttls:
            r.error((*p, "starttls"), f"{_name(p)} takes tls: true or starttls: true, not both")
        sender = r.string((*p, "from"), required=True).strip()
        if sender and "@" not in sender:
            r.error((*p, "from"), f"{_name((*p, 'from'))} must be an email address")
        return SenderConfig(
            kind,
            host=r.string((*p, "host"), required=True).strip(),
            port=r.integer((*p, "port"), 465 if tls else 587, 1, 65535),
            starttls=starttls,
            tls=tls,
            username=username,
            password=password,
            sender=sender,
            ca_file=_path(r, (*p, "ca_file"), base),
            timeout=timeout,
        )
    return SenderConfig(kind, path=_path(r, (*p, "path"), base) or base / "outbox.log")


def _service_url(r: Reader, path: KeyPath, default: str, *, required: bool = False) -> str:
    """The URL of a provider API or webhook; no credentials in it (they come from secrets)."""
    url = r.string(path, default, required=required or r.has(path)).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:  # not echoed: it may be secret
        r.error(path, f"{_name(path)} must not hold a user name or password")
    elif parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
        r.error(path, f'{_name(path)} must be an http(s) URL, not "{url}"')
    return url


def _audit(r: Reader, base: Path) -> AuditSettings:
    p: KeyPath = ("audit",)
    r.mapping(p)
    r.unknown_keys(p, ("to", "path"))
    to = cast(AuditTo, r.choice((*p, "to"), ("stdout", "file"), "stdout"))
    path = _path(r, (*p, "path"), base)
    if to == "file" and path is None and not r.has((*p, "path")):
        message = "audit.path is required with to: file (the file the lines are appended to)"
        r.error(p, message, at_key=True)
    elif to == "stdout" and path is not None:
        r.error((*p, "path"), "audit.path is only used with to: file", at_key=True)
    return AuditSettings(to, path if to == "file" else None)


def _metrics(r: Reader) -> MetricsSettings:
    p: KeyPath = ("metrics",)
    r.mapping(p)
    r.unknown_keys(p, ("networks",))
    if not r.has((*p, "networks")):
        return MetricsSettings()
    if r.value((*p, "networks")) == []:
        message = (
            'metrics.networks must list at least one network (["0.0.0.0/0", "::/0"] for '
            "every address)"
        )
        r.error((*p, "networks"), message)
        return MetricsSettings()
    return MetricsSettings(r.networks((*p, "networks")) or LOOPBACK)


def _seconds(r: Reader, path: KeyPath, default: float) -> float:
    """A number of seconds (fractions allowed) or a duration such as "5s" or "5m"."""
    value = r.value(path)
    if isinstance(value, float) and value > 0:
        return value
    return r.duration(path, timedelta(seconds=default)).total_seconds()
