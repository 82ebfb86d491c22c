"""The sign-in core's rules as decision tables, without HTTP (gateway.signin.steps): who is
asked what after the password, when a wrong answer ends the sign-in, when it merely waits, and
that only a completion releases the application's cookies."""

from __future__ import annotations

import pytest

from gateway.decision import Standing
from gateway.regulation import SLOW_DOWN, Lockout
from gateway.sessions import DEFERRAL, MAX_FAILURES, TRUSTED_NETWORK
from gateway.signin.steps import (
    Again,
    Ask,
    Complete,
    Deferred,
    EndSignIn,
    PasswordRight,
    RightAnswer,
    SignIn,
    Stage,
    Wait,
    Waiting,
    WrongAnswer,
    step,
)

NOW = 1_800_000_000.0
DELAY = Lockout(NOW + 4, SLOW_DOWN)
LOCKED = Lockout(NOW + 900, "user_ip")
START = SignIn(Stage.PASSWORD_RIGHT)
ASKED = SignIn(Stage.ASKED)


@pytest.mark.parametrize(
    ("standing", "stage", "effect"),
    [
        # enrolled: challenged, unless a trusted-network cookie from inside (not for clients)
        (Standing(enrolled=True), Stage.ASKED, Ask("challenge")),
        (Standing(enrolled=True, trusted=True), Stage.VERIFIED, Complete(TRUSTED_NETWORK)),
        (Standing(enrolled=True, trusted=True, client_account=True), Stage.ASKED, Ask("challenge")),
        # not enrolled: enrol, unless a live deferral while the company does not enforce
        (Standing(enrolled=False), Stage.ASKED, Ask("enrol")),
        (Standing(enrolled=False, enforced=False), Stage.ASKED, Ask("enrol")),
        (
            Standing(enforced=False, deferred_until=NOW + 1, now=NOW),
            Stage.VERIFIED,
            Complete(DEFERRAL),
        ),
        (Standing(enforced=False, deferred_until=NOW, now=NOW), Stage.ASKED, Ask("enrol")),
        (Standing(enforced=True, deferred_until=NOW + 1, now=NOW), Stage.ASKED, Ask("enrol")),
        (
            Standing(enforced=False, deferred_until=NOW + 1, now=NOW, client_account=True),
            Stage.ASKED,
            Ask("enrol"),
        ),
        # a trusted network never stands in for an enrolment
        (Standing(enrolled=False, trusted=True), Stage.ASKED, Ask("enrol")),
    ],
)
def test_who_is_asked_what_after_the_password(
    standing: Standing, stage: Stage, effect: object
) -> None:
    state, effects = step(START, PasswordRight(standing))
    assert state.stage is stage
    assert effects == (effect,)


@pytest.mark.parametrize(
    ("failures", "lockout", "stage", "effects"),
    [
        (0, None, Stage.ASKED, (Again(),)),
        (0, DELAY, Stage.ASKED, (Again(), Wait(DELAY))),
        (MAX_FAILURES - 2, None, Stage.ASKED, (Again(),)),
        # the last wrong answer in a row ends the sign-in; its delay is not mentioned
        (MAX_FAILURES - 1, None, Stage.ENDED, (EndSignIn("too_many"),)),
        (MAX_FAILURES - 1, DELAY, Stage.ENDED, (EndSignIn("too_many"),)),
        # a lockout ends it at once, and says until when
        (0, LOCKED, Stage.ENDED, (EndSignIn("locked_out"), Wait(LOCKED))),
        (MAX_FAILURES - 1, LOCKED, Stage.ENDED, (EndSignIn("locked_out"), Wait(LOCKED))),
    ],
)
def test_when_a_wrong_answer_ends_the_sign_in(
    failures: int, lockout: Lockout | None, stage: Stage, effects: tuple[object, ...]
) -> None:
    state, done = step(SignIn(Stage.ASKED, failures), WrongAnswer(lockout))
    assert state == SignIn(stage, failures + 1)
    assert done == effects


def test_a_wait_in_force_is_not_an_answer() -> None:
    """Before an answer is looked at: a delay sends it back uncounted; a lockout ends it."""
    assert step(SignIn(Stage.ASKED, 2), Waiting(DELAY)) == (SignIn(Stage.ASKED, 2), (Wait(DELAY),))
    assert step(SignIn(Stage.ASKED, 2), Waiting(LOCKED)) == (
        SignIn(Stage.ENDED, 2),
        (EndSignIn("locked_out"), Wait(LOCKED)),
    )


@pytest.mark.parametrize(
    "event",
    [
        PasswordRight(Standing(enrolled=True)),
        WrongAnswer(None),
        WrongAnswer(LOCKED),
        Waiting(DELAY),
        Waiting(LOCKED),
        RightAnswer("totp"),
        Deferred(),
    ],
)
def test_only_a_completion_releases_the_application_cookies(event: object) -> None:
    """Every effect that is not `Complete` keeps the sign-in pending (the cookies held); and
    every path to VERIFIED is a `Complete`."""
    for state in (START, ASKED, SignIn(Stage.ASKED, MAX_FAILURES - 1)):
        after, effects = step(state, event)  # type: ignore[arg-type]
        completes = [effect for effect in effects if isinstance(effect, Complete)]
        assert (after.stage is Stage.VERIFIED) == bool(completes), (state, event)


def test_a_right_answer_and_a_deferral_complete() -> None:
    assert step(ASKED, RightAnswer("webauthn")) == (
        SignIn(Stage.VERIFIED),
        (Complete("webauthn"),),
    )
    assert step(ASKED, Deferred()) == (SignIn(Stage.VERIFIED), (Complete(DEFERRAL),))


@pytest.mark.parametrize("stage", [Stage.VERIFIED, Stage.ENDED])
def test_an_ended_or_verified_sign_in_takes_no_more_events(stage: Stage) -> None:
    with pytest.raises(ValueError, match="takes no"):
        step(SignIn(stage), RightAnswer("totp"))
