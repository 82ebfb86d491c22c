"""The login form of `gateway intercept probe`: finding an application's login form in its page
(every control, as a browser parses it), guessing its user-name field, filling it in as a browser
would, describing its fields for the operator without their values, and where it posts as the
gateway sees it. Pure: gateway.probe does the talking."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

USER_TYPES = ("text", "email")  # inputs that may hold the user name
_SKIPPED_TYPES = ("reset", "button", "image", "file")  # never sent by a plain form submission


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


def visible_path(url: str, upstream: str) -> tuple[str, str]:
    """The path and query of `url` as the gateway sees them (without the upstream's own
    path prefix, which the gateway adds when it forwards)."""
    parts = urlsplit(url)
    base = urlsplit(upstream).path.rstrip("/")
    path = parts.path or "/"
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base) :] or "/"
    return path, parts.query
