"""One-time codes sent by SMS, voice call or email: made, kept hashed, checked, and rationed.

Pure: the caller stores the records (`Store.put_code`) and the send times (`Store.reserve_send`),
and passes the time in. A code is bound to the session that asked for it and to where it was sent
(both go into its HMAC), so a code read from another session or for another number is no code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.policy.model import CodeLimits

# The numbers of PRODUCT.md section 3; company policy may carry them later (see the report).
DIGITS = 6
DEFAULT_LIMITS = CodeLimits()  # the numbers come from the company's policy (methods.codes)
HOUR = 3600


def derive_key(signing_key: str) -> bytes:
    """The HMAC key for codes, derived from the first session signing key: a copy of the store
    holds only digests that nobody without the key can test guesses against."""
    return hmac.new(signing_key.encode(), b"gateway one-time codes v1", hashlib.sha256).digest()


def record_key(method: str, binding: str) -> str:
    """Where the code of one method for one session is kept (`binding`: the session's storage
    key, itself a hash of the session id)."""
    return f"{method}:{binding}"


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def normalise(text: str) -> str:
    """What a person typed, without spaces and dashes ("123 456" is "123456"), full-width
    digits as ASCII ones."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in " -\t")


def _digest(key: bytes, method: str, binding: str, destination: str, code: str) -> str:
    message = "\n".join((method, binding, destination, code)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue(
    key: bytes,
    method: str,
    binding: str,
    destination: str,
    now: float,
    limits: CodeLimits = DEFAULT_LIMITS,
) -> tuple[str, dict[str, Any]]:
    """A new code and the record to store for it (until `record["expires_at"]`)."""
    code = new_code()
    record = {
        "digest": _digest(key, method, binding, destination, code),
        "tries": 0,
        "sent_at": now,
        "expires_at": now + limits.valid_for.total_seconds(),
    }
    return code, record


class Outcome(Enum):
    OK = "ok"
    WRONG = "wrong"  # not this code; tries remain
    VOID = "void"  # not this code, and that was the last try: ask for a new one
    NONE = "none"  # no code was sent to this session, or it has expired or been used


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    record: dict[str, Any] | None  # store this back (one more try counted); None: delete it
    tries_left: int = 0


def check(
    key: bytes,
    record: dict[str, Any] | None,
    method: str,
    binding: str,
    destination: str,
    given: str,
    now: float,
    limits: CodeLimits = DEFAULT_LIMITS,
) -> Check:
    """Compare what was typed with the stored code. A right code is used up (single use)."""
    if record is None or float(record.get("expires_at", 0)) <= now:
        return Check(Outcome.NONE, None)
    tries = int(record.get("tries", 0))
    if tries >= limits.tries:
        return Check(Outcome.VOID, None)
    typed = normalise(given)
    candidate = _digest(key, method, binding, destination, typed)
    right = len(typed) == DIGITS and typed.isdigit()
    if hmac.compare_digest(candidate, str(record.get("digest", ""))) and right:
        return Check(Outcome.OK, None)
    tries += 1
    if tries >= limits.tries:
        return Check(Outcome.VOID, None)
    return Check(Outcome.WRONG, {**record, "tries": tries}, limits.tries - tries)


@dataclass(frozen=True)
class SendWait:
    seconds: int  # 0: a code may be sent now
    capped: bool = False  # the hourly limit, not the short pause between sends


def send_wait(sends: Sequence[float], now: float, limits: CodeLimits = DEFAULT_LIMITS) -> SendWait:
    """How long before another code may go to this user, given the user's sends in the last
    hour (`Store.sends_since(user, now - HOUR)`)."""
    recent = sorted(at for at in sends if now - HOUR < at <= now)
    if len(recent) >= limits.sends_per_hour:
        oldest = recent[-limits.sends_per_hour]
        return SendWait(max(1, _ceil(oldest + HOUR - now)), capped=True)
    pause = limits.resend_after.total_seconds()
    if recent and now - recent[-1] < pause:
        return SendWait(max(1, _ceil(recent[-1] + pause - now)))
    return SendWait(0)


def _ceil(seconds: float) -> int:
    whole = int(seconds)
    return whole if whole == seconds else whole + 1
