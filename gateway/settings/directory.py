"""The `portal.ldap:` block of an application: where the directory is (an ldaps:// URL, or
ldap:// with StartTLS, or without only when allow_plaintext says so; a CA file), how a user is
found and checked (search-then-bind with a service account's bind_dn and bind_password, or
direct bind with a user_dn template), where the groups are, and the timeouts and pool size.
Checked once here; gateway.identity.ldap does the work.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from gateway.settings.model import Ldap, LdapGroups
from gateway.settings.values import port_ok, read_path, read_seconds, read_secret
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name

_LDAP = "applications.<name>.portal.ldap"
_LDAP_KEYS = Keys("settings", _LDAP, (
    "url", "base_dn", "start_tls", "allow_plaintext", "ca_file", "bind_dn", "bind_password",
    "user_dn", "user_filter", "user_attribute", "name_attribute", "email_attribute", "groups",
    "connect_timeout", "timeout", "deadline", "pool_size",
))  # fmt: skip
_GROUP_KEYS = Keys(
    "settings", f"{_LDAP}.groups", ("attribute", "base_dn", "filter", "name_attribute")
)


def read_ldap(r: Reader, p: KeyPath, base: Path) -> Ldap | None:
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _LDAP_KEYS)
    url = _url(r, (*p, "url"))
    start_tls = r.boolean((*p, "start_tls"), False)
    if start_tls and url.startswith("ldaps:"):
        r.error((*p, "start_tls"), "start_tls is for ldap:// URLs; an ldaps:// one is TLS already")
    plaintext = r.boolean((*p, "allow_plaintext"), False)
    if url.startswith("ldap:") and not start_tls and not plaintext:
        message = (
            f"{_name(p)}: an ldap:// URL without start_tls sends every password in the clear; "
            "use ldaps://, or start_tls: true, or (for a directory on this very host only) "
            "allow_plaintext: true"
        )
        r.error((*p, "url"), message)
    elif plaintext and (start_tls or url.startswith("ldaps:")):
        message = "allow_plaintext is for ldap:// URLs without start_tls; this one is TLS already"
        r.error((*p, "allow_plaintext"), message, at_key=True)
    bind_dn = _text(r, (*p, "bind_dn"))
    user_dn = _text(r, (*p, "user_dn"))
    base_dn = _text(r, (*p, "base_dn"))
    password = None
    if bind_dn and user_dn:
        message = "give bind_dn (search, then bind as the user) or user_dn (direct bind), not both"
        r.error(p, message, at_key=True)
    elif not bind_dn and not user_dn:
        message = (
            f"{_name(p)} needs bind_dn and bind_password (a service account that searches for the "
            "user) or user_dn (a DN with {user}, for a direct bind as the user)"
        )
        r.error(p, message, at_key=True)
    if bind_dn:
        password = read_secret(r, (*p, "bind_password"), base)
        if not base_dn:
            r.error(p, f"{_name(p)} needs base_dn: where the users are searched", at_key=True)
    elif r.has((*p, "bind_password")):
        r.error((*p, "bind_password"), "bind_password goes with bind_dn", at_key=True)
    if user_dn and user_dn.count("{user}") != 1:
        r.error((*p, "user_dn"), 'user_dn must hold "{user}" once, as in "uid={user},ou=people"')
    user_filter = _filter(r, (*p, "user_filter"), "(uid={user})", "{user}")
    return Ldap(
        url=url,
        base_dn=base_dn,
        start_tls=start_tls,
        ca_file=read_path(r, (*p, "ca_file"), base),
        bind_dn=bind_dn,
        bind_password=password,
        user_dn=user_dn,
        user_filter=user_filter,
        user_attribute=_text(r, (*p, "user_attribute"), "uid"),
        name_attribute=_text(r, (*p, "name_attribute"), "cn"),
        email_attribute=_text(r, (*p, "email_attribute"), "mail"),
        groups=_groups(r, (*p, "groups")),
        connect_timeout=read_seconds(r, (*p, "connect_timeout"), 5.0),
        timeout=read_seconds(r, (*p, "timeout"), 10.0),
        deadline=read_seconds(r, (*p, "deadline"), 1.0) if r.has((*p, "deadline")) else None,
        pool_size=r.integer((*p, "pool_size"), 4, 1, 64),
    )


def _text(r: Reader, path: KeyPath, default: str = "") -> str:
    return r.string(path, default, required=r.has(path)).strip()


def _url(r: Reader, path: KeyPath) -> str:
    url = r.string(path, required=True).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("ldap", "ldaps")
        or not parts.hostname
        or not port_ok(parts)
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        example = '"ldaps://ldap.example:636"'
        r.error(path, f'{_name(path)} must be a URL such as {example}, not "{url}"')
    return url.rstrip("/")


def _filter(r: Reader, path: KeyPath, default: str, placeholder: str) -> str:
    text = _text(r, path, default)
    if not (text.startswith("(") and text.endswith(")")) or placeholder not in text:
        r.error(path, f'{_name(path)} must be a filter in parentheses holding "{placeholder}"')
    elif text.count("(") != text.count(")"):
        r.error(path, f"{_name(path)} has unbalanced parentheses")
    return text


def _groups(r: Reader, p: KeyPath) -> LdapGroups | None:
    if not r.has(p) or r.mapping(p) is None:
        return None
    r.unknown_keys(p, _GROUP_KEYS)
    attribute = _text(r, (*p, "attribute"))
    base_dn = _text(r, (*p, "base_dn"))
    if not base_dn:
        message = (
            f"{_name(p)} needs base_dn: the one container whose groups count, those directly "
            "under it (a group's name is unique only among its siblings: cn=admins,ou=sales "
            'and cn=admins,ou=it would both be "admins")'
        )
        r.error(p, message, at_key=True)
    if attribute and r.has((*p, "filter")):
        message = "filter is for a search of groups under base_dn, not with attribute"
        r.error((*p, "filter"), message, at_key=True)
    return LdapGroups(
        attribute=attribute,
        base_dn=base_dn,
        filter=_filter(r, (*p, "filter"), "(member={dn})", "{dn}"),
        name_attribute=_text(r, (*p, "name_attribute"), "cn"),
    )
