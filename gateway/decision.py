"""The decision: what happens to one request, as a pure function of what is known about it.

access rule  x  identity mode  x  session level  x  enrolled  ->  outcome
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
    DENY = "deny"
    UNIDENTIFIED = "unidentified"  # header mode without the SSO's header


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


def decide(access: Access, mode: Mode, level: Level, enrolled: bool) -> Decision:
    if access is Access.BYPASS:
        return Decision(Outcome.FORWARD_ANONYMOUS, "the access rule bypasses the gateway")
    if access is Access.DENY:
        return Decision(Outcome.DENY, "the access rule denies this path")
    if level is Level.VERIFIED:
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
    if not enrolled:
        return Decision(Outcome.ENROL, "a second factor is required and none is enrolled")
    return Decision(Outcome.CHALLENGE, "a second factor is required")
