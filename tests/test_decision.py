"""The decision as a table: access rule x identity mode x session level x enrolled -> outcome."""

import itertools

import pytest

from gateway.decision import Mode, Outcome, Standing, decide
from gateway.policy.model import Access
from gateway.sessions import Level

A, M, L, Out = Access, Mode, Level, Outcome

TABLE = [
    # access, mode, level, enrolled -> outcome
    (A.BYPASS, M.PORTAL, L.ANONYMOUS, False, Out.FORWARD_ANONYMOUS),
    (A.BYPASS, M.INTERCEPT, L.VERIFIED, True, Out.FORWARD_ANONYMOUS),
    (A.DENY, M.PORTAL, L.VERIFIED, True, Out.DENY),
    (A.DENY, M.INTERCEPT, L.ANONYMOUS, False, Out.DENY),
    (A.TWO_FACTOR, M.INTERCEPT, L.ANONYMOUS, False, Out.FORWARD_ANONYMOUS),
    (A.TWO_FACTOR, M.PORTAL, L.ANONYMOUS, False, Out.LOGIN),
    (A.TWO_FACTOR, M.HEADER, L.ANONYMOUS, False, Out.UNIDENTIFIED),
    (A.TWO_FACTOR, M.INTERCEPT, L.FIRST_FACTOR, False, Out.ENROL),
    (A.TWO_FACTOR, M.INTERCEPT, L.FIRST_FACTOR, True, Out.CHALLENGE),
    (A.TWO_FACTOR, M.PORTAL, L.FIRST_FACTOR, True, Out.CHALLENGE),
    (A.TWO_FACTOR, M.HEADER, L.FIRST_FACTOR, False, Out.ENROL),
    (A.TWO_FACTOR, M.PORTAL, L.VERIFIED, True, Out.FORWARD),
    (A.ONE_FACTOR, M.PORTAL, L.FIRST_FACTOR, False, Out.FORWARD),
    (A.ONE_FACTOR, M.PORTAL, L.ANONYMOUS, False, Out.LOGIN),
    (A.ONE_FACTOR, M.HEADER, L.FIRST_FACTOR, True, Out.FORWARD),
    (A.ONE_FACTOR, M.INTERCEPT, L.VERIFIED, True, Out.FORWARD),
]


@pytest.mark.parametrize(("access", "mode", "level", "enrolled", "expected"), TABLE)
def test_table(access: Access, mode: Mode, level: Level, enrolled: bool, expected: Outcome) -> None:
    assert decide(access, mode, level, Standing(enrolled=enrolled)).outcome is expected


def test_two_factor_never_forwards_without_verification() -> None:
    """Across every combination, a two_factor path is forwarded with identity only when verified,
    and never forwarded at all past the first factor without the second."""
    for mode, level, enrolled in itertools.product(Mode, Level, (True, False)):
        outcome = decide(Access.TWO_FACTOR, mode, level, Standing(enrolled=enrolled)).outcome
        if level is not Level.VERIFIED:
            assert outcome is not Outcome.FORWARD
        if level is Level.FIRST_FACTOR:
            assert outcome in (Outcome.CHALLENGE, Outcome.ENROL)


def test_every_decision_has_a_reason() -> None:
    for access, mode, level, enrolled in itertools.product(Access, Mode, Level, (True, False)):
        assert decide(access, mode, level, Standing(enrolled=enrolled)).reason


HOUR = 3600.0
T0 = 1_800_000_000.0
DEFERRED = T0 + 48 * HOUR

SECOND_FACTOR = [
    # enrolled, enforced, deferred_until, now, trusted, client -> outcome
    (False, True, None, T0, False, False, Out.ENROL),
    (False, False, None, T0, False, False, Out.ENROL),
    (False, False, DEFERRED, T0, False, False, Out.SKIP_DEFERRED),
    (False, False, DEFERRED, DEFERRED - 1, False, False, Out.SKIP_DEFERRED),
    (False, False, DEFERRED, DEFERRED, False, False, Out.ENROL),  # the 48 h edge
    (False, True, DEFERRED, T0, False, False, Out.ENROL),  # enforced: deferrals stop counting
    (False, False, DEFERRED, T0, True, False, Out.SKIP_DEFERRED),
    (False, True, None, T0, True, False, Out.ENROL),  # a trust cookie never replaces enrolment
    (True, True, None, T0, False, False, Out.CHALLENGE),
    (True, False, DEFERRED, T0, False, False, Out.CHALLENGE),  # enrolled: deferral irrelevant
    (True, True, None, T0, True, False, Out.SKIP_TRUSTED),
    (True, False, None, T0, True, False, Out.SKIP_TRUSTED),
    (True, True, None, T0, True, True, Out.CHALLENGE),  # client accounts: every login
    (True, False, None, T0, False, True, Out.CHALLENGE),
    (False, False, DEFERRED, T0, False, True, Out.ENROL),  # clients never defer
]


@pytest.mark.parametrize(
    ("enrolled", "enforced", "deferred_until", "now", "trusted", "client", "expected"),
    SECOND_FACTOR,
)
@pytest.mark.parametrize("mode", list(Mode))
def test_second_factor_table(
    mode: Mode,
    enrolled: bool,
    enforced: bool,
    deferred_until: float | None,
    now: float,
    trusted: bool,
    client: bool,
    expected: Outcome,
) -> None:
    standing = Standing(
        enrolled=enrolled,
        enforced=enforced,
        deferred_until=deferred_until,
        trusted=trusted,
        client_account=client,
        now=now,
    )
    assert decide(Access.TWO_FACTOR, mode, Level.FIRST_FACTOR, standing).outcome is expected
    # one_factor paths and verified sessions do not depend on the standing
    assert decide(Access.ONE_FACTOR, mode, Level.FIRST_FACTOR, standing).outcome is Out.FORWARD
    assert decide(Access.TWO_FACTOR, mode, Level.VERIFIED, standing).outcome is Out.FORWARD


def test_recovery_codes_are_never_the_default_method() -> None:
    """Without a company default, the first method other than recovery codes is offered."""
    from gateway.signin.methods import preferred

    assert preferred(["recovery", "totp"], None) == "totp"
    assert preferred(["recovery"], None) == "recovery"
    assert preferred([], None) is None
