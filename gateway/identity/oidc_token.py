"""An OpenID Connect ID token checked (Core 1.0, section 3.1.3.7), with no I/O: the signature
against the provider's keys (JWKS) by joserfc, then every claim this gateway relies on: iss, aud,
azp, exp, iat, nbf and auth_time (against max_age, when asked) within a small clock skew, and the
nonce of this sign-in. Time comes from the caller's clock."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from gateway.identity.oidc import AnswerRefused

MAX_TOKEN = 64 * 1024  # characters of an ID token looked at


class UnknownKey(Exception):
    """The token names a key the cached JWKS does not hold: the provider may have rotated its
    keys, so the caller fetches them again (once) and checks again."""


def read_keys(data: Any) -> KeySet:
    """The provider's JWKS; keys of types this gateway cannot use are left out."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("the JWKS is not an object with a list of keys")
    usable = [
        key
        for key in data["keys"]
        if isinstance(key, dict) and key.get("use", "sig") == "sig" and key.get("kty") != "oct"
    ]
    if not usable:
        raise ValueError("the JWKS holds no signing key")
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"the JWKS cannot be read: {exc}") from exc


@dataclass(frozen=True)
class Expected:
    issuer: str
    client_id: str
    nonce: str
    algorithms: Collection[str]
    skew: float  # seconds of clock difference forgiven on exp, iat, nbf and auth_time
    max_age: float | None = None  # sent in the authorization request: auth_time is then checked


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerRefused(f"the ID token's {name} is not a number")
    return float(value)


def check_claims(claims: Mapping[str, Any], expected: Expected, now: float) -> None:
    if claims.get("iss") != expected.issuer:
        raise AnswerRefused(f"the ID token's issuer is {str(claims.get('iss'))[:200]!r}")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise AnswerRefused("the ID token is not for this gateway (aud)")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise AnswerRefused("the ID token has several audiences and no azp")
    if azp is not None and azp != expected.client_id:
        raise AnswerRefused("the ID token was issued to another client (azp)")
    exp = _number(claims, "exp", True)
    iat = _number(claims, "iat", True)
    nbf = _number(claims, "nbf", False)
    assert exp is not None and iat is not None
    if now >= exp + expected.skew:
        raise AnswerRefused("the ID token has expired")
    if iat > now + expected.skew:
        raise AnswerRefused("the ID token was issued in the future (iat)")
    if nbf is not None and nbf > now + expected.skew:
        raise AnswerRefused("the ID token is not valid yet (nbf)")
    # OpenID Connect Core 3.1.3.7 (13): with max_age asked, auth_time must be there, and the
    # provider's sign-in no older than max_age
    auth_time = _number(claims, "auth_time", expected.max_age is not None)
    if auth_time is not None and auth_time > now + expected.skew:
        raise AnswerRefused("the ID token's sign-in is in the future (auth_time)")
    limit = expected.max_age
    if auth_time is not None and limit is not None and now - auth_time > limit + expected.skew:
        raise AnswerRefused("the provider's sign-in is older than max_age (auth_time)")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected.nonce):
        raise AnswerRefused("the ID token's nonce is not this sign-in's")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AnswerRefused("the ID token has no sub")


def check_id_token(token: Any, keys: KeySet, expected: Expected, now: float) -> dict[str, Any]:
    """The token's claims once its signature and claims hold; AnswerRefused otherwise, or
    UnknownKey when it names a key not in `keys`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise AnswerRefused("the token answer has no usable id_token")
    try:
        decoded = jwt.decode(token, keys, algorithms=list(expected.algorithms))
    except InvalidKeyIdError:
        raise UnknownKey() from None
    except JoseError as exc:
        raise AnswerRefused(f"the ID token's signature does not hold ({exc.error})") from None
    except (ValueError, TypeError) as exc:
        raise AnswerRefused(f"the ID token cannot be read ({type(exc).__name__})") from None
    if decoded.header.get("alg") not in expected.algorithms:
        raise AnswerRefused("the ID token is signed with an algorithm not accepted")
    check_claims(decoded.claims, expected, now)
    return dict(decoded.claims)
