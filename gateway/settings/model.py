"""What the settings file becomes: frozen dataclasses, one per section (Settings at the top,
Listen, Application with its Portal (users file or Ldap), HeaderIdentity and Timeouts,
SendersConfig of SenderConfig,
AuditSettings, MetricsSettings, Secrets of SecretSource), with the defaults a missing setting
takes. Secrets are read only when asked for, and a secret that cannot be used raises
SettingsError; everything else here is plain data, checked by the readers of the other modules.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gateway.intercept_settings import Intercept
from gateway.policy.model import IPNetwork

if TYPE_CHECKING:
    from gateway.settings.oidc import Oidc

Identity = Literal["intercept", "portal", "header"]
SenderKind = Literal["http", "webhook", "smtp", "outbox"]
CookieSecure = Literal["auto", "always", "never"]
AuditTo = Literal["stdout", "file"]

DEFAULT_STORE = "sqlite:///var/lib/gateway/gateway.db"
DEFAULT_PROVIDER = "https://api.twilio.com"
# who may read /.gateway/metrics unless `metrics.networks` says otherwise: this machine only
LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


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
class LdapGroups:
    """Where a user's groups are read: an attribute of the user's entry (`memberOf`), or a
    search under `base_dn` with `filter` (`{dn}` is the user's DN), naming each by
    `name_attribute`."""

    attribute: str = ""
    base_dn: str = ""
    filter: str = "(member={dn})"
    name_attribute: str = "cn"


@dataclass(frozen=True)
class Ldap:
    """An LDAP directory or Active Directory as portal mode's first factor (gateway.identity.
    ldap): search-then-bind with a service account (bind_dn), or direct bind (user_dn)."""

    url: str
    base_dn: str = ""
    start_tls: bool = False
    ca_file: Path | None = None
    bind_dn: str = ""
    bind_password: SecretSource | None = None
    user_dn: str = ""  # direct bind: a DN with {user}, such as "uid={user},ou=people,dc=..."
    user_filter: str = "(uid={user})"
    user_attribute: str = "uid"  # names the user (Remote-User), whatever was typed
    name_attribute: str = "cn"
    email_attribute: str = "mail"
    groups: LdapGroups | None = None
    connect_timeout: float = 5.0
    timeout: float = 10.0  # seconds for each answer of the directory
    pool_size: int = 4  # service connections kept open, and sign-ins checked at once
    # seconds for each step of a sign-in (the search, the bind) as a whole, however many
    # answers it waits for; None: connect_timeout + timeout
    deadline: float | None = None


@dataclass(frozen=True)
class Portal:
    """Where portal mode checks who signs in: a users file, a directory, or an OpenID provider
    (one of them)."""

    users_file: Path | None = None
    ldap: Ldap | None = None
    oidc: Oidc | None = None  # gateway.settings.oidc


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
