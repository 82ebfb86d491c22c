"""Which second-factor methods a user may use, and which one a sign-in page shows.

`offered` is what this gateway has and can deliver (a sender configured for text messages, say);
the company's policy narrows it and orders it. Whoever has a factor must present it: a pending
sign-in never enrols another one, or a password alone could add an attacker's phone or passkey.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from gateway.policy.model import METHODS, Company

RECOVERY = "recovery"
# facts of the user's record (Store.note_user): the default the user chose, and when each
# method last signed them in
OWN_DEFAULT = "default_method"


def used_fact(method: str) -> str:
    return f"used_{method}"


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


def addable(
    enrolled: Sequence[str],
    company: Company | None,
    offered: Collection[str],
    enrolled_alone: Collection[str],
) -> list[str]:
    """Methods a signed-in user may add as a backup: those enrolled on their own that the policy
    allows and the user does not have yet."""
    return [m for m in enrollable(company, offered, enrolled_alone) if m not in enrolled]


def sign_in_ways(
    enrolled: Sequence[str], company: Company | None, offered: Collection[str]
) -> list[str]:
    """The usable methods that sign a user in on their own (recovery codes need another one to
    recover: they are not counted)."""
    return [m for m in usable(enrolled, company, offered) if m != RECOVERY]


def may_remove(
    method: str, enrolled: Sequence[str], company: Company | None, offered: Collection[str]
) -> bool:
    """A method may be removed unless it is the user's last usable way to sign in (recovery codes
    always may: they are a spare, not a way of their own)."""
    if method not in enrolled:
        return False
    if method == RECOVERY:
        return True
    return any(m != method for m in sign_in_ways(enrolled, company, offered))


def preferred(
    options: Sequence[str], company: Company | None, own: str | None = None
) -> str | None:
    """The user's `own` default when it is among the options, else the company's, else the first
    option; recovery codes only when nothing else is left (they are for a lost device)."""
    if own is not None and own != RECOVERY and own in options:
        return own
    if company is not None and company.default_method in options:
        return company.default_method
    ordered = [name for name in options if name != RECOVERY] or list(options)
    return ordered[0] if ordered else None


@dataclass(frozen=True)
class Choice:
    """What a challenge or enrolment page shows: `method` with the `others` as "another way";
    or `go_to` another page; or `refused` with the reason."""

    method: str | None = None
    others: list[str] = field(default_factory=list)
    go_to: str | None = None  # "challenge", "enrol" or "account"
    refused: str | None = None  # "no_longer_offered", "not_available", "none_available"


def choose(
    page: str,
    enrolled: Sequence[str],
    company: Company | None,
    offered: Collection[str],
    enrolled_alone: Collection[str],
    asked: str | None,
    own: str | None = None,
) -> Choice:
    """The method for the `page` of a user with `enrolled` methods, `asked` for by name or else
    preferred (`own` is the user's chosen default). Pages: "challenge", "enrol" (a first
    enrolment) and "add" (a signed-in user adding a backup method: one must be named)."""
    if page == "add":
        if not sign_in_ways(enrolled, company, offered):
            return Choice(go_to="account")  # nothing to back up yet (a deferral)
        options = addable(enrolled, company, offered, enrolled_alone)
        if asked is None or asked in enrolled:
            return Choice(go_to="account")  # nothing named, or already there: the list
        if asked not in options:
            return Choice(refused="not_available")
        return Choice(method=asked, others=[name for name in options if name != asked])
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
    method = asked or preferred(options, company, own)
    if method is None:
        return Choice(refused="none_available")
    return Choice(method=method, others=[name for name in options if name != method])
