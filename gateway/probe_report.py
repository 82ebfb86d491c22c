"""What one run of `gateway intercept probe` saw, and how it is kept safe to show: the Target,
each login Attempt (its page, the answer, its Set-Cookie lines described as CookieFacts, whoami's
word), the Report gateway.probe fills in and renders, and the hider that takes the password (and
the deliberately wrong one) out of every line printed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, urlsplit

from gateway.cookies import parse_set_cookie
from gateway.intercept_settings import Intercept
from gateway.probe_form import LoginForm
from gateway.probe_suggest import Seen

WRONG_SUFFIX = "-probe-wrong"  # added to the real password for the attempt that must fail


@dataclass(frozen=True)
class CookieFacts:
    name: str
    value: str
    deleting: bool
    attributes: tuple[str, ...]  # Path=/, HttpOnly, Secure, SameSite=Lax, Domain=...


def cookie_facts(raw: str) -> CookieFacts | None:
    parsed = parse_set_cookie(raw)
    if parsed is None:
        return None
    found: dict[str, str] = {}
    for attribute in raw.split(";")[1:]:
        key, sep, value = attribute.strip().partition("=")
        label = {"path": "Path", "domain": "Domain", "samesite": "SameSite"}.get(key.lower())
        if label is not None and sep:
            found[label] = f"{label}={value.strip()}"
        elif key.lower() in ("httponly", "secure"):
            found[key.lower()] = "HttpOnly" if key.lower() == "httponly" else "Secure"
    order = ("Path", "Domain", "httponly", "secure", "SameSite")
    attributes = tuple(found[key] for key in order if key in found)
    if "SameSite" not in found:
        attributes += ("no SameSite",)
    return CookieFacts(parsed.name, parsed.value, parsed.deleting, attributes)


def changed_names(raw_lines: list[str], sent: dict[str, str]) -> list[str]:
    """The cookies an answer sets to a value other than the one it was sent (not deleted)."""
    names: list[str] = []
    for raw in raw_lines:
        facts = cookie_facts(raw)
        if facts is not None and not facts.deleting and sent.get(facts.name) != facts.value:
            names.append(facts.name)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Target:
    upstream: str  # the application's base URL, without a trailing "/"
    login_page: str  # path (and query) of the page with the login form
    config: Intercept | None = None  # the application's settings, if any
    app: str | None = None
    connect_timeout: float = 10.0
    total_timeout: float = 30.0


@dataclass
class Page:
    asked: str
    url: str  # where it was, after redirects
    status: int
    set_cookies: list[str]
    forms: list[LoginForm]


@dataclass
class Attempt:
    """One login, in a new browser: its page, the POST's answer, and whoami's word on it."""

    page: Page
    sent: dict[str, str] = field(default_factory=dict)  # the cookies sent with the login
    status: int = 0
    location: str | None = None
    set_cookies: list[str] = field(default_factory=list)
    whoami_status: int | None = None
    whoami_user: str | None = None
    whoami_error: str | None = None

    def jar_after(self) -> dict[str, str]:
        """The cookies the gateway asks whoami with: those sent, updated by the answer."""
        jar = dict(self.sent)
        for raw in self.set_cookies:
            facts = cookie_facts(raw)
            if facts is not None and facts.deleting:
                jar.pop(facts.name, None)
            elif facts is not None:
                jar[facts.name] = facts.value
        return jar

    def seen(self) -> Seen:
        location = urlsplit(self.location).path or "/" if self.location else None
        return Seen(self.status, location, tuple(changed_names(self.set_cookies, self.sent)))


@dataclass
class Report:
    target: Target
    user: str
    page: Page | None = None
    form: LoginForm | None = None
    username_field: str | None = None
    wrong: Attempt | None = None
    right: Attempt | None = None
    error: str | None = None

    def cookie_names(self) -> list[str]:
        """Every cookie name the application set, on the login pages and in the answers."""
        lines: list[str] = []
        for attempt in (self.wrong, self.right):
            if attempt is not None:
                lines += attempt.page.set_cookies + attempt.set_cookies
        names = [facts.name for facts in map(cookie_facts, lines) if facts is not None]
        return list(dict.fromkeys(names))


def hider(password: str) -> Callable[[str], str]:
    """A function that replaces the password (and the wrong one, as sent) in a text."""
    forms = {password + WRONG_SUFFIX, password}
    forms |= {f(s) for s in list(forms) for f in (quote, quote_plus)}
    ordered = sorted((s for s in forms if s), key=len, reverse=True)

    def hide(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return hide
