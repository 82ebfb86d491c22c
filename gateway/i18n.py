"""The language people are spoken to in: which one a request gets (their own choice, their
browser's Accept-Language, their company's `language`, else English), the Babel catalogues of
gateway/locale/, and the gettext functions that pages, messages, emails and texts go through.

The language is per request (or per message sent), held in a context variable: `choose()` binds
it for a request, `speaking()` for a block; `_()` and Jinja's `{% trans %}` read it. Strings fixed
at import (error titles, tables of wording) are marked with `N_()` and translated where shown."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files

from babel.core import Locale, negotiate_locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from babel.units import format_unit

DEFAULT = "en"
LOCALES = ("en", "de", "fr", "es")  # English is the source text: it has no catalogue
NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}  # each in itself
COOKIE = "gateway_lang"


def _nobody() -> str | None:
    return None


def _root() -> str:
    return "/"


class Choice:
    """A request's language: the person's (cookie or Accept-Language), else their company's
    (the company becomes known as the request goes on). Each is read when first needed, so a
    request that shows no page (a proxied one) reads neither the header nor its own address;
    a request too malformed to read speaks English and comes back to "/". (A plain class with
    slots: one is made for every request.)"""

    __slots__ = ("_found", "_read", "company_language", "person", "where")

    def __init__(
        self,
        person: str | Callable[[], str | None] | None = None,  # a locale, or how to read it
        company_language: Callable[[], str | None] = _nobody,
        where: Callable[[], str] = _root,  # the page's own address: the switcher comes back
    ) -> None:
        self.person = person
        self.company_language = company_language
        self.where = where
        self._found: str | None = None
        self._read: dict[str, str | None] | None = None

    def _once(self, name: str, read: Callable[[], str | None], fallback: str | None) -> str | None:
        if self._read is None:
            self._read = {}
        if name not in self._read:
            try:
                self._read[name] = read()
            except Exception:  # unreadable: the fallback, never an error
                self._read[name] = fallback
        return self._read[name]

    @property
    def chosen(self) -> str | None:
        person = self.person
        return (
            person
            if person is None or isinstance(person, str)
            else self._once("chosen", person, None)
        )

    @property
    def here(self) -> str:
        return self._once("here", self.where, "/") or "/"

    @property
    def locale(self) -> str:
        if self.chosen is not None:
            return self.chosen
        if self._found is None:
            found = self.company_language()
            if found not in LOCALES:
                return DEFAULT  # not remembered: the company may be known later on
            self._found = found
        return self._found


_CHOICE: ContextVar[Choice | None] = ContextVar("gateway_language", default=None)


def parse_accept_language(header: str) -> list[str]:
    """The languages of an Accept-Language header, most wanted first ("*" and q=0 left out;
    anything malformed is skipped, never an error)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if 0 < quality <= 1:
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def from_cookie(value: str | None) -> str | None:
    """The language a person chose with the switcher, if it is one the gateway speaks."""
    value = (value or "").strip().lower()
    return value if value in LOCALES else None


def from_header(header: str | None) -> str | None:
    """The best of the gateway's languages for the browser's Accept-Language, if any."""
    if not header:
        return None
    found = negotiate_locale(parse_accept_language(header), LOCALES, sep="-")
    return found.lower() if found and found.lower() in LOCALES else None


def negotiate(
    cookie: str | None, accept_language: str | None, company_language: str | None = None
) -> str:
    """The language of a page: the person's choice, their browser's, their company's, English."""
    return (
        from_cookie(cookie)
        or from_header(accept_language)
        or (company_language if company_language in LOCALES else None)
        or DEFAULT
    )


def choose(choice: Choice) -> Token[Choice | None]:
    return _CHOICE.set(choice)


def unchoose(token: Token[Choice | None]) -> None:
    _CHOICE.reset(token)


def current() -> str:
    choice = _CHOICE.get()
    return choice.locale if choice is not None else DEFAULT


def here() -> str:
    choice = _CHOICE.get()
    return choice.here if choice is not None else "/"


def chosen_by_person() -> bool:
    choice = _CHOICE.get()
    return choice is not None and choice.chosen is not None


@contextmanager
def speaking(locale: str | None) -> Iterator[str]:
    """Within the block, speak `locale` (an email or text for a recipient; a page for a
    company): an unknown one means English."""
    locale = locale if locale in LOCALES else DEFAULT
    back = here()
    token = _CHOICE.set(Choice(locale, where=lambda: back))
    try:
        yield locale
    finally:
        _CHOICE.reset(token)


def page_locale(company_language: str | None) -> str:
    """A page's language once its company is settled: the person's choice wins over it."""
    if chosen_by_person() or company_language not in LOCALES:
        return current()
    return company_language or DEFAULT


@cache
def catalogue(locale: str) -> NullTranslations:
    """The translations of `locale` from gateway/locale/<locale>/LC_MESSAGES/messages.po, read
    from the package (no compile step; fuzzy entries are left out, as gettext does)."""
    if locale == DEFAULT or locale not in LOCALES:
        return NullTranslations()
    source = files("gateway") / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as po:
        parsed = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return Translations(compiled)


def load_all() -> None:
    """Read every catalogue now (at start): a broken one stops the start, not a page."""
    for locale in LOCALES:
        catalogue(locale)


def gettext(message: str, **params: object) -> str:
    """`message` in the current language, with %(name)s filled in from `params` if any."""
    text = catalogue(current()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, count: int, **params: object) -> str:
    text = catalogue(current()).ngettext(singular, plural, count)
    return text % {"num": count, **params}


_ = gettext


def raw_gettext(message: str) -> str:
    """gettext without filling in: Jinja's newstyle gettext fills in the variables itself."""
    return catalogue(current()).gettext(message)


def raw_ngettext(singular: str, plural: str, count: int) -> str:
    return catalogue(current()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark `message` for the catalogue where it is defined; it is translated where shown."""
    return message


class Explained(ValueError):
    """A refusal whose reason people may read: `str()` is the English for logs and operators,
    `words()` the request's language for the page. The reason is marked with `N_()` where it is
    raised; a value that is itself an Explained is put into words too."""

    def __init__(self, reason: str, **params: object) -> None:
        self.reason, self.params = reason, params
        super().__init__(reason % params if params else reason)

    def words(self) -> str:
        params = {
            name: value.words() if isinstance(value, Explained) else value
            for name, value in self.params.items()
        }
        return gettext(self.reason, **params)


def babel_locale() -> Locale:
    # English dates as the pages always wrote them ("2 December 2026")
    return Locale.parse("en_GB" if current() == DEFAULT else current())


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def unit_words(count: int, unit: str) -> str:
    """ "30 days", "30 Tage": a count of one unit (day, hour, minute, second)."""
    return str(format_unit(count, f"duration-{unit}", length="long", locale=babel_locale()))


def duration_words(value: timedelta) -> str:
    """A span for people, in whole units of the current language: "48 hours", "3 Tage",
    "1 heure 30 minutes". Up to three days reads in hours (gateway.durations.human_duration)."""
    seconds = int(value.total_seconds())
    if seconds >= 3 * 86400 and seconds % 86400 == 0:
        return unit_words(seconds // 86400, "day")
    if seconds >= 3600 and seconds % 3600 == 0:
        return unit_words(seconds // 3600, "hour")
    parts = []
    for unit, size in _UNITS:
        if seconds >= size:
            parts.append(unit_words(seconds // size, unit))
            seconds %= size
    return " ".join(parts) or unit_words(0, "second")


def ago_words(seconds: float) -> str:
    """How long ago, in whole units rounded down (never sooner than it was): "just now",
    "5 minutes ago", "vor 3 Stunden", "yesterday", "il y a 12 jours"."""
    whole = max(0, int(seconds))
    for unit, size in _UNITS[:3]:
        if whole >= size:
            count = whole // size
            if unit == "day" and count == 1:
                return gettext("yesterday")
            return format_timedelta(
                timedelta(seconds=-count * size),
                add_direction=True,
                granularity=unit,  # type: ignore[arg-type]
                threshold=1e9,  # this unit, not a rounded larger one
                locale=babel_locale(),
            )
    return gettext("just now")


def date_words(moment: datetime) -> str:
    """A day for people in the current language ("2 December 2026", "2. Dezember 2026")."""
    return format_date(moment, format="long", locale=babel_locale())


def time_words(moment: datetime) -> str:
    """A clock time in UTC ("14:05 UTC") for the current language."""
    return format_datetime(moment, "HH:mm", tzinfo=moment.tzinfo, locale=babel_locale()) + " UTC"


def moment_words(moment: datetime) -> str:
    """A day and its time in UTC ("2 December 2026, 14:05 UTC", "2. Dezember 2026, 14:05 UTC")."""
    return gettext("%(day)s, %(time)s", day=date_words(moment), time=time_words(moment))
