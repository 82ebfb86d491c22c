"""The pure half of `gateway intercept probe`: finding an application's login form in its page,
filling it in as a browser would, describing Set-Cookie lines, suggesting `intercept:`
settings from what the probe saw, and the report it fills in. No I/O here: gateway.probe does
the talking."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, quote_plus, urljoin, urlsplit

from gateway.cookies import parse_set_cookie
from gateway.intercept_settings import Intercept, Whoami

WRONG_SUFFIX = "-probe-wrong"  # added to the real password for the attempt that must fail
USER_TYPES = ("text", "email")  # inputs that may hold the user name
_SKIPPED_TYPES = ("reset", "button", "image", "file")  # never sent by a plain form submission
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")  # a name derived from a hash (DokuWiki's DW<md5>)
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


@dataclass(frozen=True)
class Field:
    """One control of a form, in document order."""

    name: str
    type: str  # an input's type (lower case), "select", "textarea", or "submit button"...
    value: str | None  # None: no value attribute (nor text, nor selected option)
    checked: bool = False
    disabled: bool = False

    @property
    def submit(self) -> bool:
        return self.type in ("submit", "submit button")


@dataclass(frozen=True)
class LoginForm:
    action: str  # absolute, resolved against the page's URL
    method: str  # upper case; a form without one is a GET, as in a browser
    enctype: str
    fields: tuple[Field, ...]

    @property
    def password_index(self) -> int:
        return next(i for i, f in enumerate(self.fields) if f.type == "password")

    @property
    def password_field(self) -> str:
        return self.fields[self.password_index].name

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass
class _Form:
    action: str
    method: str
    enctype: str
    fields: list[Field] = field(default_factory=list)


class _FormParser(HTMLParser):
    """Every form of a page and its controls (inputs, buttons, selects, text areas)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._form: _Form | None = None
        self._select: tuple[str, bool, list[tuple[str, bool]]] | None = None
        self._option: list[str] | None = None  # the text of an option without a value
        self._option_selected = False
        self._textarea: tuple[str, bool, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name.lower(): value for name, value in attrs}
        name, disabled = a.get("name") or "", "disabled" in a
        if tag == "form":
            if self._form is None:  # a form inside a form is ignored, as browsers do
                self._form = _Form(
                    action=a.get("action") or "",
                    method=(a.get("method") or "GET").strip().upper(),
                    enctype=(a.get("enctype") or "application/x-www-form-urlencoded").lower(),
                )
                self.forms.append(self._form)
            return
        if self._form is None:
            return
        if tag == "input":
            kind = (a.get("type") or "text").strip().lower()
            self._form.fields.append(
                Field(name, kind, a.get("value"), checked="checked" in a, disabled=disabled)
            )
        elif tag == "button":
            kind = (a.get("type") or "submit").strip().lower()
            kind = "button" if kind == "button" else f"{kind} button"
            self._form.fields.append(Field(name, kind, a.get("value"), disabled=disabled))
        elif tag == "select":
            self._select = (name, disabled, [])
        elif tag == "option" and self._select is not None:
            self._end_option()
            value = a.get("value")
            self._option_selected = "selected" in a
            if value is None:
                self._option = []
            else:
                self._select[2].append((value, self._option_selected))
        elif tag == "textarea":
            self._textarea = (name, disabled, [])

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option.append(data)
        if self._textarea is not None:
            self._textarea[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "option":
            self._end_option()
        elif tag == "select" and self._select is not None and self._form is not None:
            self._end_option()
            name, disabled, options = self._select
            chosen = [v for v, selected in options if selected] or [v for v, _ in options[:1]]
            self._form.fields.append(
                Field(name, "select", chosen[0] if chosen else None, disabled=disabled)
            )
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            name, disabled, text = self._textarea
            self._form.fields.append(Field(name, "textarea", "".join(text), disabled=disabled))
            self._textarea = None

    def _end_option(self) -> None:
        if self._option is not None and self._select is not None:
            self._select[2].append((" ".join("".join(self._option).split()), self._option_selected))
        self._option = None


def login_forms(page: str, page_url: str) -> list[LoginForm]:
    """The forms of `page` that hold a password input, their actions resolved against
    `page_url` (an empty action is the page itself)."""
    parser = _FormParser()
    parser.feed(page)
    parser.close()
    return [
        LoginForm(
            action=urljoin(page_url, form.action.strip()) if form.action.strip() else page_url,
            method=form.method,
            enctype=form.enctype,
            fields=tuple(form.fields),
        )
        for form in parser.forms
        if any(f.type == "password" for f in form.fields)
    ]


def guess_username_field(form: LoginForm) -> str | None:
    """The last named text or email input before the password input: where people type their
    user name. None when there is none (a form that signs in one account)."""
    before = form.fields[: form.password_index]
    found = [f.name for f in before if f.type in USER_TYPES and f.name and not f.disabled]
    return found[-1] if found else None


def submission(
    form: LoginForm, username_field: str | None, user: str, password: str
) -> list[tuple[str, str]]:
    """The fields a browser sends when someone types `user` and `password` and presses Enter:
    every named, enabled control with its value, checked boxes only, and the first submit
    button (the one Enter presses) if it has a name."""
    pairs: list[tuple[str, str]] = []
    submitter_seen = False
    password_at = form.password_index
    for index, f in enumerate(form.fields):
        if f.submit and not f.disabled:
            if not submitter_seen and f.name:
                pairs.append((f.name, f.value or ""))
            submitter_seen = True
            continue
        if not f.name or f.disabled or f.type in _SKIPPED_TYPES or f.type.endswith("button"):
            continue
        if f.type in ("checkbox", "radio") and not f.checked:
            continue
        if index == password_at:
            value = password
        elif f.name == username_field and f.type != "password":
            value = user
        elif f.type in ("checkbox", "radio"):
            value = f.value if f.value is not None else "on"
        else:
            value = f.value or ""
        pairs.append((f.name, value))
    return pairs


def field_line(f: Field) -> str:
    """A field for the operator: its name, type and whether it has a value (a hidden one's
    length, never a value itself)."""
    if f.type == "hidden":
        shown = f"value of {len(f.value or '')} characters"
    elif f.type in ("checkbox", "radio"):
        shown = "checked" if f.checked else "not checked"
    else:
        shown = "has a value" if f.value else "no value"
    return f"{f.name or '(no name)'}, {f.type}, {shown}" + (", disabled" if f.disabled else "")


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


def cookie_pattern(name: str) -> str:
    """A pattern for a cookie name derived from a hash ("DW" + md5 -> "DW*"), else the name."""
    match = _HEX_RUN.search(name)
    if match is None or not (name[: match.start()] + name[match.end() :]).strip("*?"):
        return name
    return name[: match.start()] + "*" + name[match.end() :]


@dataclass(frozen=True)
class Seen:
    """One login attempt's answer, as the suggestion needs it."""

    status: int
    location_path: str | None  # the redirect's path, or None
    changed: tuple[str, ...]  # cookies it set to a new value


def suggestion(
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    username_field: str | None,
    user: str,
    right: Seen,
    wrong: Seen,
    whoami: Whoami | None = None,
) -> list[str]:
    """An `intercept:` block, as YAML lines, from the form and the two answers: the cookies
    only the successful login set, the status it answered, where the failed one went."""
    only_right = [name for name in right.changed if name not in wrong.changed]
    notes: list[str] = []
    if not only_right and right.changed:
        notes.append("# the failed login set these cookies too: check they sign someone in")
    names = list(dict.fromkeys(cookie_pattern(n) for n in (only_right or right.changed)))
    if not names:
        notes.append("# the login set no cookie: name the application's session cookie here")
        names = ["SESSION_COOKIE"]
    lines = ["intercept:", *("  " + note for note in notes)]
    lines.append(f"  session_cookies: [{', '.join(_scalar(n) for n in names)}]")
    lines += ["  login:", f"    path: {_scalar(path)}", f"    method: {_scalar(method)}"]
    if query:
        pairs = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in query)
        lines.append(f"    query: {{{pairs}}}")
    if username_field is not None:
        lines.append(f"    username_field: {_scalar(username_field)}")
    else:
        lines.append("    # the form has no user-name field: the one account it signs in")
        lines.append(f"    account: {_scalar(user.strip().lower())}")
    lines.append(f"    success: {{status: [{right.status}]}}")
    if wrong.location_path is not None:
        if right.location_path is not None and _under(right.location_path, wrong.location_path):
            lines.append(
                "    # the failed login redirected where the successful one did: only whoami "
                "tells them apart"
            )
        else:
            lines.append(f"    failure: {{location: [{_scalar(wrong.location_path)}]}}")
    return lines + _whoami_lines(whoami)


def _whoami_lines(whoami: Whoami | None) -> list[str]:
    if whoami is None:
        return [
            "  # whoami is recommended: a page of the application that says who is signed in.",
            "  # The gateway asks it, server to server with the cookies the login set, to know",
            "  # the login worked and whose second factor to ask (one of json, pattern, header).",
            "  # whoami:",
            "  #   path: /api/me",
            "  #   json: user      # or pattern: 'Signed in as ([^<]+)'   or header: X-User",
        ]
    lines = ["  whoami:", f"    path: {_scalar(whoami.path)}"]
    if whoami.method != "GET":
        lines.append(f"    method: {_scalar(whoami.method)}")
    if whoami.json:
        lines.append(f"    json: {_scalar('.'.join(whoami.json))}")
    elif whoami.pattern is not None:
        lines.append(f"    pattern: {json.dumps(whoami.pattern.pattern)}")
    elif whoami.header is not None:
        lines.append(f"    header: {_scalar(whoami.header)}")
    return lines


def _under(path: str, prefix: str) -> bool:
    """Whether the failure setting `prefix` would also cover `path` (see intercept._at)."""
    bare = prefix.rstrip("/")
    return path.rstrip("/") == bare or path.startswith(bare + "/")


def _scalar(text: str) -> str:
    """`text` as a YAML scalar: bare when that reads back as the same text, else quoted."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def visible_path(url: str, upstream: str) -> tuple[str, str]:
    """The path and query of `url` as the gateway sees them (without the upstream's own
    path prefix, which the gateway adds when it forwards)."""
    parts = urlsplit(url)
    base = urlsplit(upstream).path.rstrip("/")
    path = parts.path or "/"
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base) :] or "/"
    return path, parts.query


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
