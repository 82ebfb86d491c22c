"""The sign-in after the password, as a state machine: `step(state, event) -> (state, effects)`.

It holds the rules that matter most, with no I/O: who is asked what once the password is right
(a challenge, an enrolment, or nothing with a trusted-network cookie, a remembered browser or a
live deferral), when a
wrong answer ends the sign-in (MAX_FAILURES in a row, or a lockout) and when it merely waits,
and that the application's cookies are released only by a completion. The handlers feed it the
events they see and carry out the effects it returns (completion.complete does `Complete`).

    PASSWORD_RIGHT --PasswordRight--> ASKED | VERIFIED
    ASKED --Waiting(delay)--> ASKED          (the answer is not looked at, not counted)
    ASKED --Waiting(lockout)--> ENDED
    ASKED --WrongAnswer--> ASKED | ENDED
    ASKED --RightAnswer | Deferred--> VERIFIED
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.decision import Outcome, Standing, second_factor
from gateway.regulation import Lockout
from gateway.sessions import DEFERRAL, MAX_FAILURES, REMEMBERED, TRUSTED_NETWORK


class Stage(StrEnum):
    PASSWORD_RIGHT = "password_right"  # noqa: S105 - the first factor is done, the second not yet asked
    ASKED = "asked"  # on a challenge or enrolment page
    VERIFIED = "verified"
    ENDED = "ended"  # the password must be given again


@dataclass(frozen=True)
class SignIn:
    stage: Stage
    failures: int = 0  # wrong answers in a row in this sign-in


# events


@dataclass(frozen=True)
class PasswordRight:
    standing: Standing


@dataclass(frozen=True)
class Waiting:
    """Before an answer is looked at: the lockout or delay already in force."""

    lockout: Lockout


@dataclass(frozen=True)
class WrongAnswer:
    lockout: Lockout | None  # what counting it led to


@dataclass(frozen=True)
class RightAnswer:
    via: str  # the method


@dataclass(frozen=True)
class Deferred:
    """ "Remind me later", granted."""


Event = PasswordRight | Waiting | WrongAnswer | RightAnswer | Deferred

# effects


@dataclass(frozen=True)
class Ask:
    page: str  # "challenge" or "enrol"


@dataclass(frozen=True)
class Complete:
    """A verified session; the application's held cookies released and bound to it."""

    via: str


@dataclass(frozen=True)
class Again:
    """Back to the same page, with the error (and `Wait`, if any)."""


@dataclass(frozen=True)
class Wait:
    lockout: Lockout  # shown: a delay before the next try, or how long the lockout lasts


@dataclass(frozen=True)
class EndSignIn:
    reason: str  # "too_many" or "locked_out"


Effect = Ask | Complete | Again | Wait | EndSignIn

SKIPS = {
    Outcome.SKIP_TRUSTED: TRUSTED_NETWORK,
    Outcome.SKIP_REMEMBERED: REMEMBERED,
    Outcome.SKIP_DEFERRED: DEFERRAL,
}


def step(state: SignIn, event: Event) -> tuple[SignIn, tuple[Effect, ...]]:
    if state.stage in (Stage.VERIFIED, Stage.ENDED):
        raise ValueError(f"a sign-in that is {state.stage} takes no {type(event).__name__}")
    if isinstance(event, PasswordRight):
        outcome = second_factor(event.standing).outcome
        if outcome in SKIPS:
            return replace(state, stage=Stage.VERIFIED), (Complete(SKIPS[outcome]),)
        page = "challenge" if outcome is Outcome.CHALLENGE else "enrol"
        return replace(state, stage=Stage.ASKED), (Ask(page),)
    if isinstance(event, Waiting):
        if event.lockout.is_delay:
            return replace(state, stage=Stage.ASKED), (Wait(event.lockout),)
        return replace(state, stage=Stage.ENDED), (EndSignIn("locked_out"), Wait(event.lockout))
    if isinstance(event, WrongAnswer):
        failures = state.failures + 1
        lockout = event.lockout
        if lockout is not None and not lockout.is_delay:
            ended = SignIn(Stage.ENDED, failures)
            return ended, (EndSignIn("locked_out"), Wait(lockout))
        if failures >= MAX_FAILURES:  # the sign-in is over: the page says so, not the delay
            return SignIn(Stage.ENDED, failures), (EndSignIn("too_many"),)
        waits = (Wait(lockout),) if lockout is not None else ()
        return SignIn(Stage.ASKED, failures), (Again(), *waits)
    if isinstance(event, RightAnswer):
        return replace(state, stage=Stage.VERIFIED), (Complete(event.via),)
    return replace(state, stage=Stage.VERIFIED), (Complete(DEFERRAL),)
