"""The decision: what happens to one request, as a pure function of what is known about it.

    access rule x identity mode x session level x standing -> outcome

`Standing` is what is known, once the first factor is done, about the user's second factor:
enrolled or not, enforcement, a deferral, a trusted-network cookie, a remembered browser, the
account type. On a rule
with a step-up (`reauthenticate_after`), a verified session is also judged by how long ago it
presented a real second factor (`factor_age`: None when it never did, having been let through
by a trusted network, a remembered browser or a deferral): the session's own fields, no store
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from gateway.durations import format_duration
from gateway.policy.model import Access
from gateway.sessions import Level


class Mode(StrEnum):
    INTERCEPT = "intercept"
    PORTAL = "portal"
    HEADER = "header"


class Outcome(StrEnum):
    FORWARD = "forward"  # with the session's identity
    FORWARD_ANONYMOUS = "forward_anonymous"  # no identity attached
    LOGIN = "login"  # first factor needed (portal login page)
    CHALLENGE = "challenge"  # second factor needed
    ENROL = "enrol"  # second factor needed, none enrolled yet
    SKIP_TRUSTED = "skip_trusted"  # no challenge: a valid trusted-network cookie, from inside
    SKIP_DEFERRED = "skip_deferred"  # no enrolment yet: the user chose "remind me later"
    SKIP_REMEMBERED = "skip_remembered"  # no challenge: a browser remembered for this user
    # verified, but its second factor is older than the rule's step-up: asked for it again
    STEP_UP = "step_up"
    DENY = "deny"
    UNIDENTIFIED = "unidentified"  # header mode without the SSO's header


@dataclass(frozen=True)
class Standing:
    enrolled: bool = False
    enforced: bool = True
    deferred_until: float | None = None
    trusted: bool = False  # a valid trusted-network cookie for this user, from inside its network
    client_account: bool = False
    now: float = 0.0
    # a live remembered browser of this user (company's remember_browser, its signed cookie)
    remembered: bool = False


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


RECENT_ENOUGH = "the session's second factor is recent enough for the access rule's step-up"


def decide(
    access: Access,
    mode: Mode,
    level: Level,
    standing: Standing = Standing(),
    *,
    reauthenticate_after: float | None = None,
    factor_age: float | None = None,
) -> Decision:
    """`reauthenticate_after`: the rule's step-up in seconds, if it has one; `factor_age`: how
    many seconds ago a verified session presented a real second factor (None: never)."""
    if access is Access.BYPASS:
        return Decision(Outcome.FORWARD_ANONYMOUS, "the access rule bypasses the gateway")
    if access is Access.DENY:
        return Decision(Outcome.DENY, "the access rule denies this path")
    if level is Level.VERIFIED:
        if reauthenticate_after is not None and access is Access.TWO_FACTOR:
            if factor_age is not None and factor_age < reauthenticate_after:
                # the usual case, on every request: no text to build
                return Decision(Outcome.FORWARD, RECENT_ENOUGH)
            bound = format_duration(timedelta(seconds=reauthenticate_after))
            if factor_age is None:
                return Decision(
                    Outcome.STEP_UP,
                    f"the access rule asks for a second factor within {bound}; this session "
                    "was let through without one (a remembered browser, a trusted network or a "
                    "deferral)",
                )
            return Decision(
                Outcome.STEP_UP,
                f"the access rule asks for a second factor within {bound}; this session's is older",
            )
        return Decision(Outcome.FORWARD, "the session has passed the second factor")
    if level is Level.ANONYMOUS:
        if mode is Mode.INTERCEPT:
            return Decision(
                Outcome.FORWARD_ANONYMOUS, "not signed in: the application shows its own login"
            )
        if mode is Mode.PORTAL:
            return Decision(Outcome.LOGIN, "not signed in")
        return Decision(Outcome.UNIDENTIFIED, "the single sign-on in front sent no user")
    if access is Access.ONE_FACTOR:
        return Decision(Outcome.FORWARD, "the access rule asks for one factor only")
    return second_factor(standing)


def second_factor(standing: Standing) -> Decision:
    """After the first factor, on a path that needs two."""
    if standing.enrolled:
        if standing.trusted and not standing.client_account:
            return Decision(
                Outcome.SKIP_TRUSTED, "a valid trusted-network cookie, from inside that network"
            )
        if standing.remembered and not standing.client_account:
            return Decision(
                Outcome.SKIP_REMEMBERED, "a browser remembered for this user, not yet lapsed"
            )
        return Decision(Outcome.CHALLENGE, "a second factor is required")
    if (
        not standing.enforced
        and not standing.client_account
        and standing.deferred_until is not None
        and standing.now < standing.deferred_until
    ):
        return Decision(Outcome.SKIP_DEFERRED, "enrolment deferred and not yet due")
    if standing.enforced:
        return Decision(Outcome.ENROL, "2FA is enforced for this user and none is enrolled")
    return Decision(Outcome.ENROL, "a second factor is required and none is enrolled")
