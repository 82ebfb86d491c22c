"""OpenID Connect as portal mode's first factor, the relying party's rules with no I/O: the
provider's discovery document read and checked, one sign-in's secrets (state, nonce, PKCE
verifier) and the authorization request they go in, and what an answer must hold to be believed.
The ID token's checks are in gateway.identity.oidc_token; the requests to the provider in
gateway.oidc_client; the pages in gateway.handlers.signin.oidc_login.

A sign-in, as the handlers carry it out:

    login page -> new Attempt (state, nonce, verifier, target) sealed in a cookie of the
                  browser (nothing in the store) -> 303 to the provider's authorization endpoint
    callback   -> the Attempt unsealed from the cookie named by the state (another browser
                  has none) -> code + verifier exchanged for tokens -> the ID token checked
                  (signature, iss, aud, azp, exp/iat/nbf, nonce) -> the user named by a claim ->
                  the state marked used in the store (once: a replay finds the mark) -> the
                  second factor (or the provider's own, where the company's policy accepts it)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from gateway.crypto import Cipher, DecryptionFailed

ATTEMPT_TTL = 600  # seconds a sign-in may spend at the provider
BASIC = "client_secret_basic"  # how this client authenticates at the token endpoint, or POST
POST = "client_secret_post"
ATTEMPT_COOKIE = "gateway_oidc"  # a sign-in begun, kept in the browser that began it
MAX_ATTEMPTS = 3  # sign-ins begun at once in one browser (tabs); the oldest are given up
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
    """How a state is named in the store and in a cookie's name: its SHA-256, never itself."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One sign-in at the provider: what the callback must find again. It is kept in the browser
    that began it (sealed: an AES-GCM cookie only this gateway can make or read), not in the
    store, so visits to the login page write nothing there."""

    state: str  # 256 random bits (token_ok), in the authorization request and the callback
    nonce: str
    verifier: str  # PKCE code_verifier (RFC 7636): 43 characters of 256 random bits
    target: str  # where to go after the sign-in (a safe relative path)
    redirect_uri: str
    expires: float  # the gateway's clock: the callback must come before

    @classmethod
    def new(cls, target: str, redirect_uri: str, now: float) -> Attempt:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(32),
            target=target,
            redirect_uri=redirect_uri,
            expires=now + ATTEMPT_TTL,
        )

    def challenge(self) -> str:
        """S256: BASE64URL(SHA256(verifier))."""
        return _b64(hashlib.sha256(self.verifier.encode("ascii")).digest())

    def seal(self, cipher: Cipher, application: str) -> str:
        """The cookie's value: encrypted and authenticated, bound to this application."""
        fields = [self.state, self.nonce, self.verifier, self.target, self.redirect_uri]
        return cipher.encrypt(json.dumps([*fields, self.expires]), _sealed_for(application))

    @classmethod
    def unseal(
        cls, sealed: str | None, cipher: Cipher, application: str, state: str, now: float
    ) -> Attempt | None:
        """The attempt a cookie holds, when it is this gateway's, for this application and this
        state, and not expired; None otherwise (tampered, another key, or simply too old)."""
        attempt = cls.read(sealed, cipher, application)
        if attempt is None or now >= attempt.expires:
            return None
        return attempt if hmac.compare_digest(attempt.state, state) else None

    @classmethod
    def read(cls, sealed: str | None, cipher: Cipher, application: str) -> Attempt | None:
        if sealed is None or len(sealed) > MAX_SEALED:
            return None
        try:
            fields = json.loads(cipher.decrypt(sealed, _sealed_for(application)))
            if not isinstance(fields, list) or len(fields) != 6:
                return None
            state, nonce, verifier, target, redirect_uri, expires = fields
            texts = (state, nonce, verifier, target, redirect_uri)
            if not all(isinstance(text, str) for text in texts):
                return None
            return cls(state, nonce, verifier, target, redirect_uri, float(expires))
        except (DecryptionFailed, ValueError, TypeError):
            return None


MAX_SEALED = 6000  # characters of an attempt's cookie (its target is at most 2048)


def _sealed_for(application: str) -> str:
    return f"oidc-attempt:{application}"


def attempt_cookie(state: str) -> str:
    """The cookie's name (before the `__Host-` prefix over TLS): one per sign-in begun, so that
    sign-ins begun in two tabs each find theirs."""
    return f"{ATTEMPT_COOKIE}_{digest(state)[:16]}"


def used_mark(application: str, state: str) -> str:
    """The store's mark of a state whose sign-in was accepted (a replay finds it)."""
    return f"oidc-used:{application}:{digest(state)}"


# what secrets.token_urlsafe(32) gives: 256 bits in 43 characters of base64url, ASCII only
# (str.isalnum would take Arabic-Indic digits or a sharp s as well)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def token_ok(value: str | None) -> bool:
    """A value this gateway could have made with secrets.token_urlsafe(32) (a state)."""
    return value is not None and _TOKEN.fullmatch(value) is not None


def authorization_url(
    discovery: Discovery,
    client_id: str,
    scopes: Collection[str],
    attempt: Attempt,
    max_age: float | None = None,
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
    if max_age is not None:
        query["max_age"] = str(int(max_age))
    separator = "&" if urlsplit(discovery.authorization_endpoint).query else "?"
    return discovery.authorization_endpoint + separator + urlencode(query)


def signed_in_within(claims: Mapping[str, Any], seconds: float, skew: float, now: float) -> bool:
    """The provider's sign-in (auth_time) is at most `seconds` old, the clock skew forgiven: what
    it asked then (its second factor) is fresh enough to count as this sign-in's. A token with
    no auth_time does not say, so it is not."""
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
        return False
    return now - auth_time <= seconds + skew


def user_name(claims: Mapping[str, Any], claim: str) -> str:
    """The user's name from `claim`, lower-cased as the users file and the directory name users.
    An email is believed only when the provider says it verified it (`email_verified: true`):
    an unverified one could be anybody's. A name that could stand for another is refused, not
    folded: one that Unicode compatibility folding (NFKC) would change (a Kelvin sign, which
    lower() makes a k, full-width letters, ligatures, a no-break space), one with spaces at its
    ends, or one with a control or invisible format character; so one account at the provider
    is one gateway user, and a crafted claim cannot become another person's name."""
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise AnswerRefused(f"the ID token has no {claim}")
    if claim == "email" and claims.get("email_verified") is not True:
        raise AnswerRefused("the ID token's email is not verified")
    if len(value) > MAX_TEXT or value != value.strip() or not _plain_name(value):
        raise AnswerRefused(f"the ID token's {claim} is not a plain name")
    name = value.lower()
    if not _plain_name(name):  # (İ lowers to i and a combining dot, still plain)
        raise AnswerRefused(f"the ID token's {claim} is not a plain name")
    return name


def _plain_name(text: str) -> bool:
    """In Unicode normal form NFKC, with no control, format, private, unassigned or separator
    character but the plain space."""
    return unicodedata.normalize("NFKC", text) == text and not any(
        unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in text
    )


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
