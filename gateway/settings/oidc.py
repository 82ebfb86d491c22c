"""The `portal.oidc:` block of an application: the OpenID provider portal mode signs people in
with (its issuer, found by discovery), this gateway's client there (client_id and a client
secret kept in a file or the environment), the scopes asked, the claim that names the user,
what the provider's own second factor looks like in its ID tokens (whether it counts is each
company's policy: provider_mfa), the clock skew forgiven and the provider's timeout. Checked once
here; gateway.identity.oidc and gateway.oidc_client do the work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.identity.oidc import CALLBACK_PATH, DEFAULT_MFA_AMR
from gateway.settings.model import SecretSource
from gateway.settings.values import port_ok, read_seconds, read_secret
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader
from gateway.yamlsource import setting_name as _name

_OIDC = "applications.<name>.portal.oidc"
_KEYS = Keys("settings", _OIDC, (
    "issuer", "client_id", "client_secret", "scopes", "username_claim", "redirect_uri",
    "provider_mfa", "clock_skew", "timeout", "groups_claim", "max_age",
))  # fmt: skip
_MFA_KEYS = Keys("settings", f"{_OIDC}.provider_mfa", ("amr", "acr", "max_age"))
DEFAULT_MFA_MAX_AGE = 600.0  # seconds: a second factor asked by the provider during this sign-in
DEFAULT_SCOPES = ("openid", "email", "profile")


@dataclass(frozen=True)
class Oidc:
    """An OpenID provider as portal mode's first factor (gateway.identity.oidc)."""

    issuer: str
    client_id: str
    client_secret: SecretSource
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    username_claim: str = "email"  # an email is believed only with email_verified: true
    # a claim listing the user's groups (passed on as Remote-Groups; policy members by group);
    # empty: none
    groups_claim: str = ""
    # the callback's full URL as registered at the provider; empty: this request's scheme and
    # host followed by CALLBACK_PATH
    redirect_uri: str = ""
    # the provider's own second factor: an ID token whose amr holds one of these, or whose acr
    # is one of these (it counts only for companies whose policy says provider_mfa: accept)
    mfa_amr: tuple[str, ...] = DEFAULT_MFA_AMR
    mfa_acr: tuple[str, ...] = ()
    # how old (auth_time) the provider's sign-in may be for its second factor to count as this
    # session's: an older one (the provider's own session, from this morning) is no fresh factor
    mfa_max_age: float = DEFAULT_MFA_MAX_AGE
    # sent as max_age (the provider signs the person in again when its sign-in is older), and
    # auth_time checked against it (OpenID Connect Core 3.1.3.7); None: not sent
    max_age: float | None = None
    clock_skew: float = 60.0
    timeout: float = 10.0


def read_oidc(r: Reader, p: KeyPath, base: Path) -> Oidc | None:
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _KEYS)
    issuer = _url(r, (*p, "issuer"), required=True)
    client_id = r.string((*p, "client_id"), required=True).strip()
    secret = read_secret(r, (*p, "client_secret"), base)
    scopes = _words(r, (*p, "scopes"), DEFAULT_SCOPES)
    if "openid" not in scopes:
        r.error((*p, "scopes"), f"{_name((*p, 'scopes'))} must hold openid")
    redirect_uri = _url(r, (*p, "redirect_uri"), required=False)
    if redirect_uri and urlsplit(redirect_uri).path != CALLBACK_PATH:
        message = f"{_name((*p, 'redirect_uri'))} must end in {CALLBACK_PATH}, the callback"
        r.error((*p, "redirect_uri"), message)
    mfa = (*p, "provider_mfa")
    amr: tuple[str, ...] = DEFAULT_MFA_AMR
    acr: tuple[str, ...] = ()
    mfa_max_age = DEFAULT_MFA_MAX_AGE
    if r.has(mfa) and r.mapping(mfa) is not None:
        r.unknown_keys(mfa, _MFA_KEYS)
        amr = _words(r, (*mfa, "amr"), DEFAULT_MFA_AMR)
        acr = _words(r, (*mfa, "acr"), ())
        mfa_max_age = read_seconds(r, (*mfa, "max_age"), DEFAULT_MFA_MAX_AGE)
    max_age = read_seconds(r, (*p, "max_age"), 0.0) if r.has((*p, "max_age")) else None
    skew = read_seconds(r, (*p, "clock_skew"), 60.0)
    if skew > 300:
        r.error((*p, "clock_skew"), f"{_name((*p, 'clock_skew'))} must be 5 minutes or less")
    return Oidc(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        scopes=scopes,
        username_claim=r.string((*p, "username_claim"), "email").strip() or "email",
        groups_claim=r.string((*p, "groups_claim"), "").strip(),
        redirect_uri=redirect_uri,
        mfa_amr=amr,
        mfa_acr=acr,
        mfa_max_age=mfa_max_age,
        max_age=max_age,
        clock_skew=skew,
        timeout=read_seconds(r, (*p, "timeout"), 10.0),
    )


def _words(r: Reader, path: KeyPath, default: tuple[str, ...]) -> tuple[str, ...]:
    if not r.has(path):
        return default
    return tuple(text.strip() for _, text in r.strings(path, required=True) if text.strip())


def _url(r: Reader, path: KeyPath, *, required: bool) -> str:
    url = r.string(path, required=required or r.has(path)).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if (
        not (parts.scheme == "https" or (parts.scheme == "http" and loopback))
        or not parts.hostname
        or not port_ok(parts)
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        example = '"https://accounts.example.com"'
        message = f'{_name(path)} must be an https:// URL such as {example}, not "{url}"'
        r.error(path, message + " (http:// only on this machine)")
    return url
