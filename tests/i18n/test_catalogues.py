"""Every string shown to people is in the German, French and Spanish catalogues, translated and
not fuzzy: Babel extracts the templates and the Python sources with the keywords the gateway
uses (gateway.i18n_catalogue), so a string added without its translations fails here. Python
text not yet wrapped in gettext is counted per file (tests/i18n/scan.py) against a known
allow-list that may only shrink."""

from __future__ import annotations

import re

import pytest

from gateway import i18n
from gateway.i18n_catalogue import TRANSLATED, extract, read
from tests.i18n.scan import counts

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|</?[a-z]+[^>]*>")

# Python files with text for people that gettext does not wrap yet, and how many such strings
# (tests/i18n/scan.py): the list only shrinks. A file not listed must have none.
NOT_YET_WRAPPED: dict[str, int] = {}


@pytest.fixture(scope="module")
def extracted() -> list[str | tuple[str, ...]]:
    return [message.id for message in extract() if message.id]


def test_the_extraction_finds_the_pages_and_the_python_text(
    extracted: list[str | tuple[str, ...]],
) -> None:
    assert "Sign in" in extracted and "Two-step sign-in protects this site." in extracted
    assert len(extracted) > 250


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated_and_none_is_fuzzy(
    locale: str, extracted: list[str | tuple[str, ...]]
) -> None:
    catalogue = read(locale)
    missing = [key for key in extracted if key not in catalogue]
    untranslated, fuzzy = [], []
    for key in extracted:
        message = catalogue.get(key if isinstance(key, str) else key[0])
        if message is None:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(forms):
            untranslated.append(key)
        if message.fuzzy:
            fuzzy.append(key)
    assert not missing, f"{locale}: not in the catalogue (run python -m gateway.i18n_catalogue)"
    assert not untranslated, f"{locale}: not translated: {untranslated}"
    assert not fuzzy, f"{locale}: fuzzy: {fuzzy}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_every_placeholder_and_tag(locale: str) -> None:
    for message in read(locale):
        if not message.id or not message.string:
            continue
        source = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = sorted(PLACEHOLDER.findall(source[-1]))
        for form in forms:
            found = sorted(PLACEHOLDER.findall(form))
            # a singular may say "one" for %(count)s
            assert found in (wanted, [p for p in wanted if p != "%(count)s"]), (locale, message.id)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_catalogues_load_and_translate(locale: str) -> None:
    with i18n.speaking(locale):
        assert i18n.gettext("Sign in") != "Sign in"


def test_text_in_python_not_yet_wrapped_is_only_what_the_allow_list_names() -> None:
    """A new sentence for people in a handler must go through gettext; a file that is done
    leaves the list (the count must match, so the list shrinks as the work goes on)."""
    assert counts() == NOT_YET_WRAPPED
