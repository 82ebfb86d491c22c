"""One-time codes sent by SMS, voice call or email: made, kept hashed, checked, and rationed.

Pure: the caller stores the records (`Store.put_code`) and the send times (`Store.reserve_send`,
under the keys of `send_keys`), and passes the time in. A code is bound to the session that asked
for it and to where it was sent (both go into its HMAC), so a code read from another session or
for another number is no code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any

from gateway.policy.model import CodeLimits

# The numbers of PRODUCT.md section 3; company policy may carry them later (see the report).
DIGITS = 6
DEFAULT_LIMITS = CodeLimits()  # the numbers come from the company's policy (methods.codes)
HOUR = 3600
# Sends to one user in any hour by every method and to every destination together, as a
# multiple of `sends_per_hour` (one hour's worth for each of text, call and email): a person
# who uses each way in turn is never stranded, and someone with the password who types number
# after number at enrolment still cannot pump out more than this.
ALL_SENDS_FACTOR = 3


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
class SendKeys:
    """The keys a send is counted under (the `user` argument of `Store.reserve_send`,
    `release_send` and `sends_since`; the Store only sees opaque strings). Each starts with its
    kind and a newline, and the user name, which may hold anything, comes last, so no user name
    can make one key equal another's."""

    pause: str  # this sign-in (session) and method: `resend_after` between two sends
    cap: str  # this user, method and destination: `sends_per_hour`
    everything: str  # this user, every method and destination: ALL_SENDS_FACTOR x that


def send_keys(key: bytes, user: str, method: str, destination: str, binding: str) -> SendKeys:
    """The keys of one send. The pause is per sign-in and method: a text just sent does not
    hold back a call asked for instead, and the send at enrolment does not hold back the first
    send of the next sign-in. The hourly cap is per user, method and destination, which is kept
    as a keyed digest, not in plain (`key`: `derive_key`'s)."""
    to = hmac.new(key, b"send destination\n" + destination.encode(), hashlib.sha256).hexdigest()
    return SendKeys(
        pause=f"pause\n{method}\n{binding}",
        cap=f"cap\n{method}\n{to[:32]}\n{user}",
        everything=all_sends_key(user),
    )


def all_sends_key(user: str) -> str:
    """The key every send to `user` is counted under, whatever the method or destination."""
    return f"all\n{user}"


def all_sends_limit(limits: CodeLimits = DEFAULT_LIMITS) -> int:
    return ALL_SENDS_FACTOR * limits.sends_per_hour


def pause_wait(sends: Sequence[float], now: float, limits: CodeLimits = DEFAULT_LIMITS) -> int:
    """Seconds before the pause after this sign-in's last send of a method is over."""
    return send_wait(sends, now, replace(limits, sends_per_hour=all_sends_limit(limits))).seconds


def cap_wait(
    sends: Sequence[float], now: float, per_hour: int, limits: CodeLimits = DEFAULT_LIMITS
) -> int:
    """Seconds before fewer than `per_hour` of `sends` are in the last hour."""
    pauseless = replace(limits, sends_per_hour=per_hour, resend_after=timedelta(0))
    return send_wait(sends, now, pauseless).seconds


@dataclass(frozen=True)
class SendWait:
    seconds: int  # 0: a code may be sent now
    capped: bool = False  # the hourly limit, not the short pause between sends


def send_wait(sends: Sequence[float], now: float, limits: CodeLimits = DEFAULT_LIMITS) -> SendWait:
    """How long before another code may be sent, given the sends counted under one key in the
    last hour (`Store.sends_since(key, now - HOUR)`)."""
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


def mask_email(address: str) -> str:
    """c•••l@example.com: the first and last letters before the @ (one, if there are two or
    fewer) and the domain, as a phone number is shown by its last 4 digits."""
    local, _, domain = address.rpartition("@")
    shown = local[:1] + "•••" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"


def describe(method: str, destination: str) -> str:
    """Where a code went, as the pages say it: never the whole number or address."""
    if method == "email":
        return mask_email(destination)
    return f"the number ending in {destination[-4:]}"
