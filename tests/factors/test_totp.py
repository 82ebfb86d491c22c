"""TOTP against RFC 6238 appendix B, the +-1 step window with a fixed clock, and replay."""

import pytest

from gateway.factors import totp

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# (time, sha1, sha256, sha512) from RFC 6238 appendix B
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def b32(seed: bytes) -> str:
    import base64

    return base64.b32encode(seed).decode()


@pytest.mark.parametrize(("moment", "sha1", "sha256", "sha512"), VECTORS)
def test_rfc6238_appendix_b(moment: int, sha1: str, sha256: str, sha512: str) -> None:
    """Each RFC 6238 test vector, for all three hash functions, at 8 digits."""
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        step = moment // totp.PERIOD
        assert totp.code_at(b32(SEEDS[digest]), step, digits=8, digest=digest) == expected


SECRET = b32(SEEDS["sha1"])
NOW = 1_700_000_000.0  # an arbitrary fixed clock


def code(offset_steps: int) -> str:
    return totp.code_at(SECRET, int(NOW) // 30 + offset_steps)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_window_is_one_step_either_side(offset: int, accepted: bool) -> None:
    """Codes from the previous, current and next 30 s step pass; two steps away fail."""
    assert totp.verify(SECRET, code(offset), NOW, None).ok is accepted


def test_window_edges_with_fixed_clock() -> None:
    """At the last second of a step the next step's code passes; one second later, the code from
    two steps back no longer does."""
    start = (int(NOW) // 30) * 30
    old = totp.code_at(SECRET, start // 30 - 1)
    assert totp.verify(SECRET, old, start + 29.999, None).ok
    assert not totp.verify(SECRET, old, start + 30, None).ok


def test_matched_step_is_returned_and_replay_refused() -> None:
    """The matched step is reported to be recorded; that step or an earlier one is a replay."""
    first = totp.verify(SECRET, code(0), NOW, None)
    assert first.ok and first.step == int(NOW) // 30
    again = totp.verify(SECRET, code(0), NOW, first.step)
    assert not again.ok and again.replay
    earlier = totp.verify(SECRET, code(-1), NOW, first.step)
    assert not earlier.ok and earlier.replay
    later = totp.verify(SECRET, code(1), NOW, first.step)
    assert later.ok


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"])
def test_malformed_codes_fail_without_error(typed: str) -> None:
    """Wrong length, letters and non-ASCII digits are simply wrong codes."""
    assert not totp.verify(SECRET, typed, NOW, None).ok


def test_spaces_and_dashes_are_ignored() -> None:
    """People type '123 456' or '123-456'."""
    c = code(0)
    assert totp.verify(SECRET, f"{c[:3]} {c[3:]}", NOW, None).ok
    assert totp.verify(SECRET, f"{c[:3]}-{c[3:]}", NOW, None).ok


def test_new_secret_is_160_bits_base32() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and secret.isalnum()
    assert totp.new_secret() != secret
