"""Authenticator-app codes (RFC 6238): SHA1, 6 digits, 30 s steps, +-1 step, no replay."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pyotp

DIGITS = 6
PERIOD = 30
WINDOW = 1  # steps either side of now that are accepted


@dataclass(frozen=True)
class TotpCheck:
    ok: bool
    step: int | None = None  # the matched time step, to be recorded as used
    replay: bool = False


def new_secret() -> str:
    """160 random bits, base32, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def code_at(secret: str, step: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    return pyotp.OTP(secret, digits=digits, digest=getattr(hashlib, digest)).generate_otp(step)


def clean_code(code: str) -> str:
    """What people type: spaces and dashes ignored."""
    return "".join(ch for ch in code if not ch.isspace() and ch != "-")


def verify(secret: str, code: str, now: float, last_used_step: int | None) -> TotpCheck:
    """Check `code` at time `now`; a step at or before `last_used_step` is a replay.

    Steps are compared in constant time; every candidate step is computed whatever matches.
    """
    code = clean_code(code)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return TotpCheck(ok=False)
    current = int(now) // PERIOD
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step), code) and matched is None:
            matched = step
    if matched is None:
        return TotpCheck(ok=False)
    if last_used_step is not None and matched <= last_used_step:
        return TotpCheck(ok=False, step=matched, replay=True)
    return TotpCheck(ok=True, step=matched)


def label(secret: str) -> str:
    """The secret grouped in fours, for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
