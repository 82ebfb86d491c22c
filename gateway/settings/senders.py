"""The `senders:` section: how codes go out on each channel (sms, voice, email) and the region
for phone numbers typed without a country code. Each channel takes the kinds that can serve it
(an SMS provider's HTTP API, a webhook, SMTP, or an outbox file for development) and each kind
reads only its own settings; `voice: sms` lets the SMS sender place calls too. Credentials are
secret sources, never written in the file or in a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from gateway.factors.phone import valid_region
from gateway.settings.model import DEFAULT_PROVIDER, SenderConfig, SenderKind, SendersConfig
from gateway.settings.values import port_ok, read_path, read_seconds, read_secret
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name

# which kinds serve which channel, and the settings each kind takes
_CHANNEL_KINDS: dict[str, tuple[SenderKind, ...]] = {
    "sms": ("http", "webhook", "outbox"),
    "voice": ("http", "webhook", "outbox"),
    "email": ("smtp", "outbox"),
}
_SENDERS_KEYS = Keys("settings", "senders", ("sms", "voice", "email", "default_region"))
_CHANNEL = "senders.<channel>"
_SENDER_KEYS = Keys("settings", _CHANNEL, ("kind",))
_KIND_KEYS: dict[str, Keys] = {
    kind: Keys("settings", _CHANNEL, names, when=f"kind: {kind}")
    for kind, names in {
        "http": ("base_url", "account_sid", "auth_token", "from", "timeout"),
        "webhook": ("url", "token", "timeout"),
        "smtp": (
            "host", "port", "starttls", "tls", "username", "password", "from", "ca_file",
            "timeout",
        ),
        "outbox": ("path",),
    }.items()
}  # fmt: skip


def read_senders(r: Reader, base: Path) -> SendersConfig:
    p: KeyPath = ("senders",)
    r.mapping(p)
    r.unknown_keys(p, _SENDERS_KEYS)
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
    r.unknown_keys(p, _SENDER_KEYS, _KIND_KEYS[kind])
    timeout = read_seconds(r, (*p, "timeout"), 10.0)
    if kind == "http":
        return SenderConfig(
            kind,
            base_url=_service_url(r, (*p, "base_url"), DEFAULT_PROVIDER),
            account_sid=read_secret(r, (*p, "account_sid"), base),
            auth_token=read_secret(r, (*p, "auth_token"), base),
            sender=r.string((*p, "from"), required=True).strip(),
            timeout=timeout,
        )
    if kind == "webhook":
        token = read_secret(r, (*p, "token"), base) if r.has((*p, "token")) else None
        url = _service_url(r, (*p, "url"), "", required=True)
        return SenderConfig(kind, url=url, token=token, timeout=timeout)
    if kind == "smtp":
        password = read_secret(r, (*p, "password"), base) if r.has((*p, "password")) else None
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
            ca_file=read_path(r, (*p, "ca_file"), base),
            timeout=timeout,
        )
    return SenderConfig(kind, path=read_path(r, (*p, "path"), base) or base / "outbox.log")


def _service_url(r: Reader, path: KeyPath, default: str, *, required: bool = False) -> str:
    """The URL of a provider API or webhook; no credentials in it (they come from secrets)."""
    url = r.string(path, default, required=required or r.has(path)).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:  # not echoed: it may be secret
        r.error(path, f"{_name(path)} must not hold a user name or password")
    elif parts.scheme not in ("http", "https") or not parts.hostname or not port_ok(parts):
        r.error(path, f'{_name(path)} must be an http(s) URL, not "{url}"')
    return url
