"""Which method a challenge or enrolment page shows, as a decision table
(gateway.signin.methods.choose)."""

from __future__ import annotations

import pytest

from gateway.policy.model import AccountType, Company
from gateway.signin.methods import Choice, allowed, choose, may_remove

OFFERED = ["totp", "webauthn", "sms", "email", "recovery"]  # "voice": no sender set up
ALONE = ["totp", "webauthn", "sms", "voice", "email"]  # recovery codes are not enrolled alone


def company(*methods: str, default: str = "") -> Company:
    return Company(
        id="acme",
        name="Acme",
        source="acme.yaml",
        domains=("acme.example",),
        users=(),
        account_type=AccountType.PARTNER,
        admins=(),
        methods=methods,
        default_method=default,
    )


ACME = company("sms", "totp", "voice", "recovery", default="totp")


@pytest.mark.parametrize(
    ("page", "enrolled", "asked", "expected"),
    [
        # whoever has a factor is challenged with it, never sent to enrol another
        ("challenge", ["sms"], None, Choice("sms", [])),
        ("challenge", ["sms", "recovery"], None, Choice("sms", ["recovery"])),
        ("challenge", ["totp", "sms"], None, Choice("totp", ["sms"])),
        ("challenge", ["totp", "sms"], "sms", Choice("sms", ["totp"])),
        ("enrol", ["totp"], None, Choice(go_to="challenge")),
        ("enrol", ["totp"], "sms", Choice(go_to="challenge")),
        # the only enrolled method is no longer in the policy: refused, not re-enrolled
        ("challenge", ["webauthn"], None, Choice(refused="no_longer_offered")),
        ("challenge", ["totp"], "webauthn", Choice(refused="not_available")),
        ("challenge", ["totp"], "voice", Choice(refused="not_available")),
        # nobody enrolled: the enrolment page, with the company's default first
        ("challenge", [], None, Choice(go_to="enrol")),
        ("enrol", [], None, Choice("totp", ["sms"])),
        ("enrol", [], "sms", Choice("sms", ["totp"])),
        ("enrol", [], "recovery", Choice(refused="not_available")),
    ],
)
def test_which_method_a_page_shows(
    page: str, enrolled: list[str], asked: str | None, expected: Choice
) -> None:
    assert choose(page, enrolled, ACME, OFFERED, ALONE, asked) == expected


def test_nothing_left_to_enrol() -> None:
    only_voice = company("voice")
    assert choose("enrol", [], only_voice, OFFERED, ALONE, None) == Choice(refused="none_available")


def test_recovery_codes_only_when_nothing_else_is_left() -> None:
    """Recovery codes are for a lost device: never the default while another method is there."""
    assert choose("challenge", ["recovery", "sms"], ACME, OFFERED, ALONE, None) == Choice(
        "sms", ["recovery"]
    )
    # the phone's calls are not offered here (no sender): the codes are what is left
    assert choose("challenge", ["recovery", "voice"], ACME, OFFERED, ALONE, None) == Choice(
        "recovery", []
    )
    assert allowed(None, OFFERED) == ["totp", "webauthn", "sms", "email", "recovery"]


@pytest.mark.parametrize(
    ("enrolled", "asked", "expected"),
    [
        # a signed-in user adding a backup method: one they do not have, that the policy allows
        (["totp"], "sms", Choice("sms", [])),
        (["sms"], "totp", Choice("totp", [])),
        (["totp"], None, Choice(go_to="account")),  # nothing named: their list
        (["totp"], "totp", Choice(go_to="account")),  # theirs already
        (["totp"], "email", Choice(refused="not_available")),  # not in the policy
        (["totp"], "voice", Choice(refused="not_available")),  # no sender
        ([], "sms", Choice(go_to="account")),  # a deferral: nothing to back up yet
        (["recovery"], "sms", Choice(go_to="account")),  # codes alone sign no one in
    ],
)
def test_adding_a_method(enrolled: list[str], asked: str | None, expected: Choice) -> None:
    assert choose("add", enrolled, ACME, OFFERED, ALONE, asked) == expected


def test_the_persons_own_default_comes_before_the_companys() -> None:
    assert (
        choose("challenge", ["totp", "sms"], ACME, OFFERED, ALONE, None, own="sms").method == "sms"
    )
    # a default that is no longer theirs (removed, or no longer allowed) is passed over
    assert choose("challenge", ["totp"], ACME, OFFERED, ALONE, None, own="sms").method == "totp"
    assert (
        choose("challenge", ["totp", "recovery"], ACME, OFFERED, ALONE, None, own="recovery").method
        == "totp"
    )


@pytest.mark.parametrize(
    ("method", "enrolled", "expected"),
    [
        ("totp", ["totp"], False),  # the last way
        ("totp", ["totp", "recovery"], False),  # recovery codes do not count as a way
        ("totp", ["totp", "sms"], True),
        ("recovery", ["totp", "recovery"], True),
        ("sms", ["totp", "sms"], True),
        ("email", ["totp", "email"], True),  # no longer allowed: removable
        ("totp", ["totp", "email"], False),  # the other is no longer allowed: not a way
        ("sms", ["totp"], False),  # not theirs
    ],
)
def test_never_the_last_way_is_removed(method: str, enrolled: list[str], expected: bool) -> None:
    assert may_remove(method, enrolled, ACME, OFFERED) is expected
