"""One-time codes with a fixed clock: the 10-minute edge, five tries, single use, the binding to
a session and a destination, the 30-second pause between sends and the hourly cap."""

from __future__ import annotations

import re

import pytest

from gateway.factors import codes
from gateway.factors.codes import Outcome

KEY = codes.derive_key("k" * 48)
T0 = 1_700_000_000.0
SESSION, OTHER_SESSION = "a" * 64, "b" * 64
PHONE = "+447400123456"


def issue(now: float = T0) -> tuple[str, dict[str, object]]:
    return codes.issue(KEY, "sms", SESSION, PHONE, now)


def wrong_for(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_codes_are_six_random_digits_stored_only_as_a_keyed_digest() -> None:
    """Six digits, not all alike from call to call; the record holds no code, only an HMAC that
    depends on the key."""
    made = {codes.new_code() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in made) and len(made) > 150
    code, record = issue()
    assert code not in repr(record)
    assert record["expires_at"] == T0 + 600 and record["tries"] == 0
    other_key = codes.derive_key("z" * 48)
    assert codes.check(other_key, record, "sms", SESSION, PHONE, code, T0).outcome is Outcome.WRONG


def test_right_code_until_the_ten_minute_edge() -> None:
    """A code works 1 second before 10 minutes have passed and not at 10 minutes."""
    code, record = issue()
    ok = codes.check(KEY, record, "sms", SESSION, PHONE, code, T0 + 599)
    assert ok.outcome is Outcome.OK and ok.record is None
    late = codes.check(KEY, record, "sms", SESSION, PHONE, code, T0 + 600)
    assert late.outcome is Outcome.NONE


def test_typed_with_spaces_dashes_or_full_width_digits() -> None:
    code, record = issue()
    for typed in (f"{code[:3]} - {code[3:]}", "".join(chr(0xFF10 + int(d)) for d in code)):
        assert codes.check(KEY, record, "sms", SESSION, PHONE, typed, T0).outcome is Outcome.OK


def test_five_wrong_tries_void_the_code() -> None:
    """Four wrong tries leave the code usable (counting down); the fifth voids it, and then
    even the right code is refused."""
    code, record = issue()
    current: dict[str, object] | None = record
    for left in (4, 3, 2, 1):
        result = codes.check(KEY, current, "sms", SESSION, PHONE, wrong_for(code), T0 + 1)
        assert result.outcome is Outcome.WRONG and result.tries_left == left
        current = result.record
    assert current is not None and current["tries"] == 4
    assert codes.check(KEY, current, "sms", SESSION, PHONE, code, T0 + 2).outcome is Outcome.OK
    fifth = codes.check(KEY, current, "sms", SESSION, PHONE, wrong_for(code), T0 + 2)
    assert fifth.outcome is Outcome.VOID and fifth.record is None
    exhausted = {**current, "tries": 5}
    assert codes.check(KEY, exhausted, "sms", SESSION, PHONE, code, T0 + 3).outcome is Outcome.VOID


def test_bound_to_session_method_and_destination() -> None:
    """The same code read with another session, another method or another number is wrong."""
    code, record = issue()
    for method, session, to in (
        ("sms", OTHER_SESSION, PHONE),
        ("voice", SESSION, PHONE),
        ("sms", SESSION, "+447400123457"),
    ):
        assert codes.check(KEY, record, method, session, to, code, T0).outcome is Outcome.WRONG
    assert codes.record_key("sms", SESSION) != codes.record_key("sms", OTHER_SESSION)


def test_no_record_and_junk() -> None:
    assert codes.check(KEY, None, "sms", SESSION, PHONE, "123456", T0).outcome is Outcome.NONE
    _, record = issue()
    for junk in ("", "12345", "1234567", "abcdef", "12345x"):
        result = codes.check(KEY, record, "sms", SESSION, PHONE, junk, T0)
        assert result.outcome is Outcome.WRONG


@pytest.mark.parametrize(
    ("sends", "now", "wait", "capped"),
    [
        ([], T0, 0, False),
        ([T0], T0 + 29, 1, False),  # the cooldown edge: one second to go
        ([T0], T0 + 29.5, 1, False),
        ([T0], T0 + 30, 0, False),
        ([T0 - 100, T0 - 70, T0 - 40, T0], T0 + 30, 0, False),  # 4 in the hour: a fifth is fine
        ([T0 + 60 * i for i in range(5)], T0 + 300, 3600 - 300, True),  # 5 in the hour: capped
        ([T0 + 60 * i for i in range(5)], T0 + 3599, 1, True),
        ([T0 + 60 * i for i in range(5)], T0 + 3600, 0, False),  # the first has left the hour
    ],
)
def test_send_wait(sends: list[float], now: float, wait: int, capped: bool) -> None:
    result = codes.send_wait(sends, now)
    assert (result.seconds, result.capped) == (wait, capped)


def test_a_company_s_limits_apply() -> None:
    """methods.codes in a policy changes the lifetime, the tries and the send limits."""
    from datetime import timedelta

    from gateway.policy.model import CodeLimits

    strict = CodeLimits(
        valid_for=timedelta(minutes=2),
        tries=2,
        resend_after=timedelta(seconds=60),
        sends_per_hour=2,
    )
    now = 1_000_000.0
    code, record = codes.issue(KEY, "sms", "s", "+447400123456", now, strict)
    assert (
        codes.check(KEY, record, "sms", "s", "+447400123456", code, now + 119, strict).outcome
        is Outcome.OK
    )
    assert (
        codes.check(KEY, record, "sms", "s", "+447400123456", code, now + 120, strict).outcome
        is Outcome.NONE
    )
    first = codes.check(KEY, record, "sms", "s", "+447400123456", "000000", now, strict)
    assert first.outcome is Outcome.WRONG and first.tries_left == 1
    assert (
        codes.check(KEY, first.record, "sms", "s", "+447400123456", "000000", now, strict).outcome
        is Outcome.VOID
    )
    assert codes.send_wait([now - 59], now, strict).seconds == 1
    assert codes.send_wait([now - 61], now, strict).seconds == 0
    assert codes.send_wait([now - 600, now - 300], now, strict).capped
