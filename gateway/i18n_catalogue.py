"""The catalogues' upkeep: every string shown to people, extracted with Babel from the templates
and the Python sources (the keywords gateway.i18n defines), and the .po files of
gateway/locale/ brought up to date with it (`python -m gateway.i18n_catalogue`: new strings are
added untranslated, gone ones dropped; translating them is then done in the .po files)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

PACKAGE = Path(__file__).resolve().parent
LOCALE_DIR = PACKAGE / "locale"
TRANSLATED = ("de", "fr", "es")
_FIXED = datetime(2026, 12, 6, tzinfo=UTC)  # no date churn in the .po files
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
}
METHODS = [
    ("templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
# as gateway.pages sets up Jinja: {% trans %} blocks trimmed
OPTIONS = {"templates/**.html": {"trimmed": "true", "extensions": "jinja2.ext.i18n"}}


def extract() -> Catalog:
    catalog = Catalog(project="twofa-gateway", fuzzy=False, creation_date=_FIXED)
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, OPTIONS, KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read(locale: str) -> Catalog:
    with po_path(locale).open("rb") as po:
        return read_po(po, locale=locale)


def update() -> None:
    template = extract()
    for locale in TRANSLATED:
        path = po_path(locale)
        if path.exists():
            catalog = read(locale)
            catalog.update(template, update_header_comment=False, no_fuzzy_matching=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(
                locale=locale, project="twofa-gateway", fuzzy=False, creation_date=_FIXED
            )
            catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as po:
            write_po(po, catalog, width=100, ignore_obsolete=True, include_lineno=False)
        missing = sum(1 for message in catalog if message.id and not message.string)
        print(f"{path.relative_to(PACKAGE.parent)}: {len(catalog)} strings, {missing} to translate")


if __name__ == "__main__":
    update()
    sys.exit(0)
