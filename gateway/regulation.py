"""How many wrong answers are tolerated, and how fast: growing delays, then a temporary lockout.

Failures (wrong passwords and wrong second factors) are counted in the store, so across
instances, over a sliding window, under three keys: the user from one address, the user from
anywhere, and the address for any user. The numbers are a company's `attempts:` policy
(gateway.policy.model.AttemptLimits). Every wait ends by itself: a delay when its time has
passed, a lockout when enough failures have left the window. From one address an attacker
slows down and then locks out only that address for the user; the user-wide limit is larger
than what one address may reach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.policy.model import AttemptLimits

DEFAULT = AttemptLimits()
SLOW_DOWN = "slow_down"  # the scope of a Lockout that is only a growing delay


def keys(user: str, ip: str | None) -> dict[str, str]:
    """The store keys of the three scopes. Requests whose address is unknown (a trusted proxy
    that did not say) share one address, "unknown", rather than escaping regulation."""
    address = ip if ip is not None else "unknown"
    return {
        "user": f"user:{user}",
        "user_ip": f"user_ip:{user}|{address}",
        "ip": f"ip:{address}",
    }


@dataclass(frozen=True)
class Lockout:
    until: float
    scope: str  # which limit: user_ip, user, ip, or SLOW_DOWN for a delay between answers

    @property
    def is_delay(self) -> bool:
        return self.scope == SLOW_DOWN


def _limit(limits: AttemptLimits, scope: str) -> int:
    return {
        "user_ip": limits.per_user_and_address,
        "user": limits.per_user,
        "ip": limits.per_address,
    }[scope]


def delay_after(failures: int, limits: AttemptLimits) -> float:
    """Seconds an answer must wait after the last of `failures` recent ones (0 while free)."""
    if failures < limits.free or failures == 0:
        return 0.0
    first = limits.first_delay.total_seconds()
    doublings = min(failures - limits.free, 32)
    return float(min(first * 2.0**doublings, limits.max_delay.total_seconds()))


def lockout(
    failures: Mapping[str, Sequence[float]], now: float, limits: AttemptLimits = DEFAULT
) -> Lockout | None:
    """The wait in force, if any, given each scope's failure times: the latest-ending lockout,
    else the growing delay of the user from this address."""
    window = limits.window.total_seconds()
    worst: Lockout | None = None
    for scope, times in failures.items():
        recent = sorted(at for at in times if now - window < at <= now)
        limit = _limit(limits, scope)
        if len(recent) >= limit:
            until = recent[-limit] + window  # when enough of them have left the window
            if worst is None or until > worst.until:
                worst = Lockout(until, scope)
    if worst is not None:
        return worst
    recent = [at for at in failures.get("user_ip", ()) if now - window < at <= now]
    if recent:
        until = max(recent) + delay_after(len(recent), limits)
        if until > now:
            return Lockout(until, SLOW_DOWN)
    return None
