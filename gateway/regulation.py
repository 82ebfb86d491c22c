"""How many wrong answers are tolerated, and how fast: growing delays, then a temporary lockout.

Failures (wrong passwords and wrong second factors) are counted in the store, so across
instances, over a sliding window, under three keys: the user from one address, the user from
anywhere, and the address for any user. The numbers are a company's `attempts:` policy
(gateway.policy.model.AttemptLimits). Every wait ends by itself: a delay when its time has
passed, a lockout when enough failures have left the window. From one address an attacker
slows down and then locks out only that address for the user; the user-wide limit is larger
than what one address may reach.

Strangers spread over many addresses could still reach the user-wide limit with wrong passwords
and keep the user locked out everywhere. So a browser known to have signed in as the user (a
right password within KNOWN_BROWSER_WINDOW; the caller says which, by the hash of its id) is
not held to the user-wide count: it has one of its own at the same limit, of its own wrong
passwords and the user's wrong second factors. Its user-and-address and address limits, the
delays and the daily cap on second factors stay as they are (OWASP's "device cookies").
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.policy.model import AttemptLimits

DEFAULT = AttemptLimits()
SLOW_DOWN = "slow_down"  # the scope of a Lockout that is only a growing delay


DAY = 86400.0  # the window of the daily limit on wrong second factors
# a browser that got a password of the user right this recently counts as the user's own
KNOWN_BROWSER_WINDOW = 30 * DAY


def address_of(ip: str | None) -> str:
    """How an address is counted: an IPv6 address by its /64 (one host commonly holds a whole
    /64, so counting /128s would give an attacker a fresh address per guess); requests whose
    address is unknown (a trusted proxy that did not say) share one, "unknown", rather than
    escaping regulation."""
    if ip is None:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


MAX_USER_KEY = 320  # a user name longer than any address is cut here for counting


def user_key(user: str) -> str:
    """The one spelling a user name is counted under, whatever door the guess came through:
    surrounding space dropped, Unicode compatibility forms folded (NFKC: full-width letters
    are the plain ones), case folded; cut at MAX_USER_KEY. "Alice@x", " alice@x " and its
    full-width spelling share one count, so variants cannot split it (the class of Authelia
    CVE-2025-24806)."""
    return unicodedata.normalize("NFKC", user).strip().casefold()[:MAX_USER_KEY]


def second_factor_key(user: str) -> str:
    """Wrong second factors of a user from anywhere, for the daily limit: only someone who
    knows the password reaches them, so a stranger cannot lock the user out this way."""
    return f"second:{user}"


def keys(user: str, ip: str | None) -> dict[str, str]:
    """The store keys of the three scopes."""
    address = address_of(ip)
    return {
        "user": f"user:{user}",
        "user_ip": f"user_ip:{user}|{address}",
        "ip": f"ip:{address}",
    }


def browser_key(user: str, browser: str) -> str:
    """Wrong passwords of a user from one known browser (`browser`: the hash of its id)."""
    return f"user_browser:{user}|{browser}"


def counted(user: str, ip: str | None, browser: str | None = None) -> dict[str, tuple[str, ...]]:
    """The keys whose failures each scope counts (scope -> keys). `browser`: the hash of the
    id of a browser known to have signed in as the user, else None. Such a browser answers to
    `user_browser` (its own wrong passwords and the user's wrong second factors) instead of
    `user` (every wrong answer for the user, strangers' guesses included)."""
    scopes: dict[str, tuple[str, ...]] = {scope: (key,) for scope, key in keys(user, ip).items()}
    if browser is not None:
        del scopes["user"]
        scopes["user_browser"] = (browser_key(user, browser), second_factor_key(user))
    scopes["user_day"] = (second_factor_key(user),)
    return scopes


def places_key(user: str) -> str:
    """The store's list of a user's failure keys that name a place: an address (user_ip) or a
    known browser (user_browser). What an admin is shown of a user's lockouts is found
    through it (gateway.admin); the counts themselves are the keys'."""
    return f"places:{user}"


def place_of(key: str) -> tuple[str, str] | None:
    """(scope, address or browser) of a key in a places list; None for any other key. A user
    name may hold "|", an address or a browser's hash never does."""
    scope, _, rest = key.partition(":")
    if scope not in ("user_ip", "user_browser") or "|" not in rest:
        return None
    return scope, rest.rpartition("|")[2]


def recorded(user: str, ip: str | None, browser: str | None, password: bool) -> list[str]:
    """The keys one wrong answer is recorded under: the three scopes' keys; for a wrong second
    factor the user's daily key too, for a wrong password from a known browser its own."""
    found = list(keys(user, ip).values())
    if not password:
        found.append(second_factor_key(user))
    elif browser is not None:
        found.append(browser_key(user, browser))
    return found


def places(user: str, ip: str | None, browser: str | None, password: bool) -> list[str]:
    """Which of the keys one wrong answer is recorded under (recorded()) go on the user's
    places list (places_key)."""
    found = [keys(user, ip)["user_ip"]]
    if password and browser is not None:
        found.append(browser_key(user, browser))
    return found


@dataclass(frozen=True)
class Lockout:
    until: float
    # which limit: user_ip, user, user_browser, ip, user_day, or SLOW_DOWN for a delay
    scope: str

    @property
    def is_delay(self) -> bool:
        return self.scope == SLOW_DOWN


def limit_of(limits: AttemptLimits, scope: str) -> tuple[int, float]:
    """A scope's limit and window."""
    if scope == "user_day":
        return limits.per_user_per_day, DAY
    window = limits.window.total_seconds()
    return {
        "user_ip": limits.per_user_and_address,
        "user": limits.per_user,
        "user_browser": limits.per_user,
        "ip": limits.per_address,
    }[scope], window


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
        limit, span = limit_of(limits, scope)
        recent = sorted(at for at in times if now - span < at <= now)
        if len(recent) >= limit:
            until = recent[-limit] + span  # when enough of them have left the window
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


@dataclass(frozen=True)
class Allowance:
    """How many more wrong answers may come before a lockout begins."""

    tries: int  # the last of them begins it
    scope: str  # the limit they reach first
    lasts: float  # seconds: the longest that lockout would last (the limit's window)


def allowance(
    failures: Mapping[str, Sequence[float]], now: float, limits: AttemptLimits = DEFAULT
) -> Allowance | None:
    """Given each scope's failure times (as for lockout()), the scope whose limit the next
    wrong answers reach first: each wrong second factor counts once in every scope counted.
    Of two reached together, the one whose lockout lasts longer. None without any scope."""
    found: Allowance | None = None
    for scope, times in failures.items():
        limit, span = limit_of(limits, scope)
        left = max(0, limit - sum(1 for at in times if now - span < at <= now))
        if found is None or (left, -span) < (found.tries, -found.lasts):
            found = Allowance(left, scope, span)
    return found
