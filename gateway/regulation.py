"""How many wrong second-factor answers are tolerated before a temporary lockout.

Failures are counted in the store (so across instances) over a sliding window, under three keys:
the user from one address, the user from anywhere, and the address for any user. From one
address an attacker locks out only that address for the user until the wider limit is reached,
and every lockout ends by itself when its failures leave the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WINDOW = 15 * 60  # seconds over which failures count
LIMITS = {"user_ip": 10, "user": 30, "ip": 50}  # well under NIST SP 800-63B's 100


def keys(user: str, ip: str | None) -> dict[str, str]:
    found = {"user": f"user:{user}"}
    if ip is not None:
        found["user_ip"] = f"user_ip:{user}|{ip}"
        found["ip"] = f"ip:{ip}"
    return found


@dataclass(frozen=True)
class Lockout:
    until: float
    scope: str  # which limit: user_ip, user or ip


def lockout(failures: Mapping[str, Sequence[float]], now: float) -> Lockout | None:
    """The lockout in force, if any, given each scope's failure times."""
    worst: Lockout | None = None
    for scope, times in failures.items():
        recent = sorted(at for at in times if now - WINDOW < at <= now)
        limit = LIMITS[scope]
        if len(recent) >= limit:
            until = recent[-limit] + WINDOW  # when enough of them have left the window
            if worst is None or until > worst.until:
                worst = Lockout(until, scope)
    return worst
