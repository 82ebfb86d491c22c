"""OpenID Connect as portal mode's first factor, the relying party's rules with no I/O: the
provider's discovery document read and checked, one sign-in's secrets (state, nonce, PKCE
verifier) and the authorization request they go in, and what an answer must hold to be believed.
The ID token's checks are in gateway.identity.oidc_token; the requests to the provider in
gateway.oidc_client; the pages in gateway.handlers.signin.oidc_login.

A sign-in, as the handlers carry it out:

    login page -> new Attempt (state, nonce, verifier) kept in the store under state, bound to
                  the browser by a cookie -> 303 to the provider's authorization endpoint
    callback   -> the Attempt taken from the store by state (once: a replay finds nothing),
                  the browser's cookie compared -> code + verifier exchanged for tokens ->
                  the ID token checked (signature, iss, aud, azp, exp/iat/nbf, nonce) ->
                  the user named by a claim -> the second factor (or the provider's own, where
                  the company's policy accepts it)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

ATTEMPT_TTL = 600  # seconds a sign-in may spend at the provider
BASIC = "client_secret_basic"  # how this client authenticates at the token endpoint, or POST
POST = "client_secret_post"
BROWSER_COOKIE = "gateway_oidc"  # binds an attempt to the browser that started it
CALLBACK_PATH = "/.gateway/oidc/callback"
# RFC 8176 values that say a second factor was used (multiple factors, one-time password,
# hardware-secured key); a company's policy may name others
# RFC 8176: "mfa" says several factors were used; "otp" or "hwk" alone may be one factor (a
# passwordless code, a key without its PIN), so they count only when a policy lists them
DEFAULT_MFA_AMR = ("mfa",)
# asymmetric signatures only: an HS256 token would be signed with the client secret, a secret
# this gateway holds too, and "none" is no signature at all
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class ProviderError(Exception):
    """The provider cannot be used just now (unreachable, or an answer that makes no sense):
    the sign-in fails closed with the 503 page."""


class AnswerRefused(Exception):
    """What came back from the provider (or the browser) is not believed: the sign-in is
    refused. `reason` is for the log and the audit line, never the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    # how this client authenticates at the token endpoint: client_secret_basic or _post
    token_auth: str
    algorithms: frozenset[str]  # ID token signing algorithms the provider says it uses


def _endpoint(data: Mapping[str, Any], name: str, issuer: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ProviderError(f"the discovery document has no {name}")
    parts = urlsplit(value)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(issuer)):
        raise ProviderError(f"{name} {value!r} is not an https:// URL")
    return value


def _loopback(url: str) -> bool:
    """A provider on this machine may be reached over plain HTTP (development, tests)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


def parse_discovery(data: Any, issuer: str) -> Discovery:
    """The discovery document (OpenID Connect Discovery 1.0), checked: its issuer must be the
    configured one exactly (section 4.3), its endpoints https (or loopback http for a loopback
    issuer), and it must support the code flow with S256 PKCE."""
    if not isinstance(data, dict):
        raise ProviderError("the discovery document is not a JSON object")
    if data.get("issuer") != issuer:
        raise ProviderError(f"the discovery document names issuer {data.get('issuer')!r}")
    response_types = data.get("response_types_supported", ["code"])
    if not isinstance(response_types, list) or "code" not in response_types:
        raise ProviderError("the provider does not offer the authorization code flow")
    pkce = data.get("code_challenge_methods_supported")
    if isinstance(pkce, list) and "S256" not in pkce:
        raise ProviderError("the provider does not offer PKCE with S256")
    methods = data.get("token_endpoint_auth_methods_supported", [BASIC])
    if not isinstance(methods, list):
        methods = [BASIC]
    token_auth = next((method for method in (BASIC, POST) if method in methods), None)
    if token_auth is None:
        raise ProviderError(f"the provider takes neither {BASIC} nor {POST}")
    algorithms = data.get("id_token_signing_alg_values_supported", ["RS256"])
    usable = (
        frozenset(a for a in algorithms if a in SIGNING_ALGORITHMS)
        if isinstance(algorithms, list)
        else frozenset()
    )
    if not usable:
        raise ProviderError("the provider signs ID tokens with no algorithm this gateway accepts")
    return Discovery(
        issuer=issuer,
        authorization_endpoint=_endpoint(data, "authorization_endpoint", issuer),
        token_endpoint=_endpoint(data, "token_endpoint", issuer),
        jwks_uri=_endpoint(data, "jwks_uri", issuer),
        token_auth=token_auth,
        algorithms=usable,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def digest(value: str) -> str:
    """How a state or a browser cookie is kept: its SHA-256, never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One sign-in at the provider: what the callback must find again."""

    state: str
    nonce: str
    verifier: str  # PKCE code_verifier (RFC 7636): 43 characters of 256 random bits
    target: str  # where to go after the sign-in (a safe relative path)
    redirect_uri: str
    browser: str  # digest of the browser's cookie

    @classmethod
    def new(cls, target: str, redirect_uri: str, browser_cookie: str) -> Attempt:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(32),
            target=target,
            redirect_uri=redirect_uri,
            browser=digest(browser_cookie),
        )

    def challenge(self) -> str:
        """S256: BASE64URL(SHA256(verifier))."""
        return _b64(hashlib.sha256(self.verifier.encode("ascii")).digest())

    def record(self) -> dict[str, str]:
        """Kept in the store under the state's digest (the state itself is not in it)."""
        return {
            "nonce": self.nonce,
            "verifier": self.verifier,
            "target": self.target,
            "redirect_uri": self.redirect_uri,
            "browser": self.browser,
        }

    @classmethod
    def from_record(cls, state: str, record: Mapping[str, Any]) -> Attempt:
        try:
            return cls(state=state, **{k: str(record[k]) for k in cls._fields()})
        except KeyError as exc:
            raise AnswerRefused(f"the stored sign-in lacks {exc}") from None

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("nonce", "verifier", "target", "redirect_uri", "browser")

    def same_browser(self, cookie: str | None) -> bool:
        return cookie is not None and hmac.compare_digest(self.browser, digest(cookie))


def store_key(application: str, state: str) -> str:
    return f"oidc:{application}:{digest(state)}"


def new_browser_cookie() -> str:
    return secrets.token_urlsafe(32)


# what secrets.token_urlsafe(32) gives: 256 bits in 43 characters of base64url, ASCII only
# (str.isalnum would take Arabic-Indic digits or a sharp s as well)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def token_ok(value: str | None) -> bool:
    """A value this gateway could have made with secrets.token_urlsafe(32)."""
    return value is not None and _TOKEN.fullmatch(value) is not None


def browser_cookie_ok(value: str | None) -> bool:
    """A cookie this gateway could have given (reused by a second tab's sign-in)."""
    return token_ok(value)


def authorization_url(
    discovery: Discovery, client_id: str, scopes: Collection[str], attempt: Attempt
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": attempt.redirect_uri,
        "scope": " ".join(scopes),
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_challenge": attempt.challenge(),
        "code_challenge_method": "S256",
    }
    separator = "&" if urlsplit(discovery.authorization_endpoint).query else "?"
    return discovery.authorization_endpoint + separator + urlencode(query)


def user_name(claims: Mapping[str, Any], claim: str) -> str:
    """The user's name from `claim` (lower case). An email is believed only when the provider
    says it verified it (`email_verified: true`): an unverified one could be anybody's."""
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise AnswerRefused(f"the ID token has no {claim}")
    if claim == "email" and claims.get("email_verified") is not True:
        raise AnswerRefused("the ID token's email is not verified")
    name = value.strip().lower()
    if len(name) > MAX_TEXT or not _plain(name):
        raise AnswerRefused(f"the ID token's {claim} is not a plain name")
    return name


MAX_TEXT = 320  # characters of a name (or an email address) taken from a claim


def _plain(text: str) -> bool:
    """No control characters: what comes from a claim may go into a header upstream."""
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def display_name(claims: Mapping[str, Any], fallback: str) -> str:
    value = claims.get("name")
    if isinstance(value, str) and value.strip() and len(value) <= MAX_TEXT and _plain(value):
        return value.strip()
    return fallback


def verified_email(claims: Mapping[str, Any]) -> str:
    value = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(value, str):
        return ""
    return value.strip() if len(value) <= MAX_TEXT and _plain(value) else ""


MAX_GROUPS = 256


def groups(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The user's groups from `claim` (a list of names), when the settings name one; a name with
    a comma (Remote-Groups is a comma-separated list) or a control character is left out."""
    value = claims.get(claim) if claim else None
    if not isinstance(value, list):
        return []
    return [
        group
        for group in value[:MAX_GROUPS]
        if isinstance(group, str)
        and group
        and "," not in group
        and len(group) <= MAX_TEXT
        and _plain(group)
    ]
