"""Reading the settings file as a whole: parse the YAML (or take a mapping built in memory),
refuse unknown top-level keys, read the top-level values (store, secrets, trusted_proxies,
policy_dir, cookies, log level) and hand each section to its own reader, collecting every error
before raising ConfigInvalid with them sorted by line, so a file is fixed in one pass. Relative
paths are taken from the settings file's directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from gateway.config_errors import ConfigInvalid
from gateway.settings.applications import read_applications
from gateway.settings.listen import read_listen
from gateway.settings.model import DEFAULT_STORE, CookieSecure, Secrets, Settings
from gateway.settings.observability import read_audit, read_metrics
from gateway.settings.senders import read_senders
from gateway.settings.values import read_path, read_secret
from gateway.yaml_document import Document, load_yaml_file
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import token as _token

_STORE_SCHEMES = (
    "sqlite:///",
    "redis://",
    "rediss://",
    "redis+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TOP_KEYS = Keys("settings", "", (
    "listen", "policy_dir", "store", "secrets", "trusted_proxies", "applications",
    "cookie_secure", "session_cookie", "log_level", "senders", "audit", "metrics",
))  # fmt: skip
_SECRETS_KEYS = Keys("settings", "secrets", ("session_keys", "encryption_key"))


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
    r.unknown_keys(("secrets",), _SECRETS_KEYS)
    secrets = Secrets(
        read_secret(r, ("secrets", "session_keys"), base),
        read_secret(r, ("secrets", "encryption_key"), base),
    )
    trusted_proxies = r.networks(("trusted_proxies",))
    session_cookie = _token(r, ("session_cookie",), "a cookie name", "gateway_session")
    applications = read_applications(r, base, bool(trusted_proxies), session_cookie)
    return Settings(
        source=source,
        listen=read_listen(r, base),
        policy_dir=read_path(r, ("policy_dir",), base) or base / "policies",
        store=store,
        secrets=secrets,
        trusted_proxies=trusted_proxies,
        applications=applications,
        cookie_secure=cast(
            CookieSecure, r.choice(("cookie_secure",), ("auto", "always", "never"), "auto")
        ),
        session_cookie=session_cookie,
        log_level=r.choice(("log_level",), _LOG_LEVELS, "info"),
        senders=read_senders(r, base),
        audit=read_audit(r, base),
        metrics=read_metrics(r),
    )


def _store_ok(url: str) -> bool:
    if url.startswith("sqlite:///"):
        return len(url) > len("sqlite:///")
    return url.startswith(_STORE_SCHEMES) and bool(urlsplit(url).netloc)
