"""The `applications:` section: for each application its hosts (each served by one application
only), its mode (`proxy`, or `forward_auth` where the proxy in front forwards and there is no
upstream), its upstream URL, how users are known (`intercept`, `portal` or `header`, with that
identity's own settings) and, in proxy mode, its timeouts and connection limit. Also the checks
that span settings: forward_auth and header identity need trusted_proxies, and an application's
session cookies must not include the gateway's own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from gateway.intercept_settings import read_intercept
from gateway.settings.directory import read_ldap
from gateway.settings.model import Application, HeaderIdentity, Identity, Portal, Timeouts
from gateway.settings.oidc import read_oidc
from gateway.settings.values import port_ok, read_path, read_seconds
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name
from gateway.yamlsource import token as _token

_IDENTITIES: tuple[Identity, ...] = ("intercept", "portal", "header")
_APP = "applications.<name>"
_APP_KEYS = Keys("settings", _APP, (
    "upstream", "hosts", "identity", "intercept", "portal", "header", "preserve_host", "timeouts",
    "mode", "max_connections",
))  # fmt: skip
_PORTAL_KEYS = Keys("settings", f"{_APP}.portal", ("users_file", "ldap", "oidc"))
_HEADER_KEYS = Keys("settings", f"{_APP}.header", ("user_header",))
_TIMEOUT_KEYS = Keys("settings", f"{_APP}.timeouts", ("connect", "read"))
_APP_MODES = ("proxy", "forward_auth")
# meaningless in forward_auth mode
_PROXY_ONLY_KEYS = ("upstream", "preserve_host", "timeouts", "max_connections")
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"(?:\*|{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


def read_applications(
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
    elif parts.scheme not in ("http", "https") or not parts.hostname or not port_ok(parts):
        example = '"http://127.0.0.1:8000"'
        r.error(path, f'{_name(path)} must be an http(s) URL such as {example}, not "{url}"')
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        r.error(path, f'{_name(path)} must not have a query string or fragment, not "{url}"')
    return url.rstrip("/")


def _portal(r: Reader, p: KeyPath, base: Path) -> Portal | None:
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _PORTAL_KEYS)
    if sum(r.has((*p, key)) for key in _PORTAL_KEYS.names) != 1:
        message = (
            f"{_name(p)} takes users_file (a YAML file of users), ldap (a directory) or oidc "
            "(an OpenID provider), one of them"
        )
        r.error(p, message, at_key=True)
    if r.has((*p, "ldap")):
        return Portal(ldap=read_ldap(r, (*p, "ldap"), base))
    if r.has((*p, "oidc")):
        return Portal(oidc=read_oidc(r, (*p, "oidc"), base))
    return Portal(read_path(r, (*p, "users_file"), base, required=True) or Path())


def _header(r: Reader, p: KeyPath) -> HeaderIdentity:
    r.mapping(p)
    r.unknown_keys(p, _HEADER_KEYS)
    return HeaderIdentity(_token(r, (*p, "user_header"), "a header name", "Remote-User"))


def _timeouts(r: Reader, p: KeyPath) -> Timeouts:
    r.mapping(p)
    r.unknown_keys(p, _TIMEOUT_KEYS)
    return Timeouts(read_seconds(r, (*p, "connect"), 5.0), read_seconds(r, (*p, "read"), 300.0))
