"""Which language a page speaks: the person's choice (the switcher's cookie), then their
browser's Accept-Language, then their company's `language`, then English; anything malformed
is ignored, never an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway import i18n


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-CA", "fr"),
        ("es-419,es;q=0.9", "es"),
        ("en-GB,en;q=0.9", "en"),
        ("ja,zh;q=0.8", None),
        ("it;q=1, de;q=0.5", "de"),
        ("de;q=0.1, fr;q=0.9", "fr"),
        ("de;q=0, fr;q=0.2", "fr"),
        ("*", None),
        ("", None),
        (";;;,,q=,de;q=abc", None),
        ("x" * 5000, None),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert i18n.from_header(header) == expected


def test_the_order_cookie_header_company_english() -> None:
    assert i18n.negotiate("es", "de", "fr") == "es"
    assert i18n.negotiate(None, "de", "fr") == "de"
    assert i18n.negotiate(None, "ja", "fr") == "fr"
    assert i18n.negotiate(None, None, None) == "en"


@pytest.mark.parametrize("cookie", ["xx", "", "DE ", "../../etc", "de;q=1", "\x00"])
def test_a_bad_cookie_is_no_choice(cookie: str) -> None:
    assert i18n.negotiate(cookie, None, None) in ("en", "de")
    assert i18n.from_cookie(cookie) in (None, "de")


def test_a_company_language_is_asked_for_only_when_needed_and_can_come_later() -> None:
    asked: list[str] = []
    known: list[str | None] = [None]

    def company() -> str | None:
        asked.append("asked")
        return known[0]

    token = i18n.choose(i18n.Choice(None, company))
    try:
        assert i18n.current() == "en"  # not known yet
        known[0] = "fr"
        assert i18n.current() == "fr"  # known now: remembered
        known[0] = "es"
        assert i18n.current() == "fr"
    finally:
        i18n.unchoose(token)
    token = i18n.choose(i18n.Choice("de", company))
    try:
        calls = len(asked)
        assert i18n.current() == "de" and len(asked) == calls
    finally:
        i18n.unchoose(token)


def test_a_page_of_a_company_speaks_its_language_unless_the_person_chose() -> None:
    token = i18n.choose(i18n.Choice(None))
    try:
        assert i18n.page_locale("de") == "de"
        assert i18n.page_locale(None) == "en"
    finally:
        i18n.unchoose(token)
    token = i18n.choose(i18n.Choice("es"))
    try:
        assert i18n.page_locale("de") == "es"
    finally:
        i18n.unchoose(token)


def test_gettext_and_plurals_in_each_language() -> None:
    with i18n.speaking("de"):
        assert i18n.gettext("Sign in") == "Anmelden"
        assert i18n.gettext("Members of %(name)s", name="Acme") == "Mitglieder von Acme"
        assert i18n.ngettext("%(num)s member", "%(num)s members", 1) in ("1 Mitglied", "1 member")
    with i18n.speaking("fr"):
        assert i18n.gettext("Sign in") == "Se connecter"
    with i18n.speaking("es"):
        assert i18n.gettext("Sign in") == "Iniciar sesión"
    with i18n.speaking("xx"):
        assert i18n.gettext("Sign in") == "Sign in"


def test_dates_and_durations_follow_the_locale() -> None:
    day = datetime(2026, 12, 2, 14, 5, tzinfo=UTC)
    with i18n.speaking("en"):
        assert i18n.date_words(day) == "2 December 2026"
        assert i18n.duration_words(timedelta(minutes=12)) == "12 minutes"
    with i18n.speaking("de"):
        assert i18n.date_words(day) == "2. Dezember 2026"
        assert i18n.duration_words(timedelta(minutes=12)) == "12 Minuten"
        assert i18n.time_words(day) == "14:05 UTC"
    with i18n.speaking("fr"):
        assert i18n.date_words(day) == "2 décembre 2026"
    with i18n.speaking("es"):
        assert i18n.date_words(day) == "2 de diciembre de 2026"


def test_a_choice_reads_the_request_only_when_a_page_needs_it() -> None:
    """A proxied request shows no page: its language and the switcher's address are read on
    first use, not for every request; read once; an unreadable request speaks English."""
    read: list[str] = []

    def person() -> str | None:
        read.append("person")
        return "de"

    def where() -> str:
        read.append("where")
        raise ValueError("a path too malformed to read")

    choice = i18n.Choice(person, where=where)
    assert read == []
    assert choice.locale == "de" and choice.locale == "de"
    assert choice.here == "/" and choice.here == "/"
    assert read == ["person", "where"]
