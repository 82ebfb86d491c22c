"""Which second-factor methods a user may use, and which one a sign-in page shows.

`offered` is what this gateway has and can deliver (a sender configured for text messages, say);
the company's policy narrows it and orders it. Whoever has a factor must present it: a pending
sign-in never enrols another one, or a password alone could add an attacker's phone or passkey.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from gateway.policy.model import METHODS, Company


def allowed(company: Company | None, offered: Collection[str]) -> list[str]:
    """The methods this user may use, in policy order: the company's list (all, for users of no
    company), restricted to what this gateway offers."""
    names = company.methods if company is not None else METHODS
    return [name for name in names if name in offered]


def enrollable(
    company: Company | None, offered: Collection[str], enrolled_alone: Collection[str]
) -> list[str]:
    """Allowed methods that are enrolled on their own (recovery codes are not)."""
    return [name for name in allowed(company, offered) if name in enrolled_alone]


def usable(enrolled: Sequence[str], company: Company | None, offered: Collection[str]) -> list[str]:
    """Enrolled methods the policy still allows, in the policy's order."""
    return [name for name in allowed(company, offered) if name in enrolled]


def preferred(options: Sequence[str], company: Company | None) -> str | None:
    """The company's default method when it is among the options, else the first option;
    recovery codes only when nothing else is left (they are for a lost device)."""
    if company is not None and company.default_method in options:
        return company.default_method
    ordered = [name for name in options if name != "recovery"] or list(options)
    return ordered[0] if ordered else None


@dataclass(frozen=True)
class Choice:
    """What a challenge or enrolment page shows: `method` with the `others` as "another way";
    or `go_to` another page; or `refused` with the reason."""

    method: str | None = None
    others: list[str] = field(default_factory=list)
    go_to: str | None = None  # "challenge" or "enrol"
    refused: str | None = None  # "no_longer_offered", "not_available", "none_available"


def choose(
    page: str,
    enrolled: Sequence[str],
    company: Company | None,
    offered: Collection[str],
    enrolled_alone: Collection[str],
    asked: str | None,
) -> Choice:
    """The method for the `page` ("challenge" or "enrol") of a user with `enrolled` methods,
    `asked` for by name or else preferred."""
    if enrolled:
        options = usable(enrolled, company, offered)
        if not options:
            return Choice(refused="no_longer_offered")
        if page == "enrol":
            return Choice(go_to="challenge")
    else:
        if page == "challenge":
            return Choice(go_to="enrol")
        options = enrollable(company, offered, enrolled_alone)
    if asked is not None and asked not in options:
        return Choice(refused="not_available")
    method = asked or preferred(options, company)
    if method is None:
        return Choice(refused="none_available")
    return Choice(method=method, others=[name for name in options if name != method])
