"""The `intercept:` settings of an application: its login request, how a successful login looks,
its session cookies, whom it says is signed in (`whoami`), its logout and other credentials.

Read once at start; every choice that would let a mistake fail open is an error here, and the
ones that are merely weak are warnings (`weaknesses`), printed by `policy check` and at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.identity.cookie_names import CookieNames
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader, setting_name, token, url_path

_AT = "applications.<name>.intercept"
_INTERCEPT_KEYS = Keys("settings", _AT, (
    "login", "session_cookies", "whoami", "logout", "credentials", "enrol_unknown_users",
))  # fmt: skip
_LOGIN_KEYS = Keys("settings", f"{_AT}.login", (
    "path", "method", "fields", "username_field", "account", "token", "success", "failure",
))  # fmt: skip
_SIGNAL_KEYS = {
    which: Keys("settings", f"{_AT}.login.{which}", ("status", "location"))
    for which in ("success", "failure")
}
_WHOAMI_KEYS = Keys("settings", f"{_AT}.whoami", ("path", "method", "json", "pattern", "header"))
_LOGOUT_KEYS = Keys("settings", f"{_AT}.logout", ("path", "methods", "query"))
_CREDENTIALS_KEYS = Keys("settings", f"{_AT}.credentials", ("headers", "query", "fields"))
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z?\[\]-]+")  # a token, or a pattern of one
_RENAMED = {
    "logout_path": "logout_path is now logout: {path: ..., methods: [POST]}",
    "success_statuses": "success_statuses is now success: {status: [...]}",
    "success_requires_cookie": "success_requires_cookie is gone: a success always needs a new "
    "session cookie",
    "failure_locations": "failure_locations is now failure: {location: [...]}",
}
_RENAMED_KEYS = {
    where: Keys("settings", where, tuple(_RENAMED), retired=True) for where in (_AT, f"{_AT}.login")
}


@dataclass(frozen=True)
class Signals:
    """Statuses and redirect targets (path prefixes) of a login answer."""

    statuses: tuple[int, ...] = ()
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoginRequest:
    path: str = "/login"
    method: str = "POST"
    # values (in the query string or the body) that make a request to `path` the login
    fields: tuple[tuple[str, str], ...] = ()
    username_field: str | None = "username"
    account: str | None = None  # the one account of a form without a user-name field
    token: str | None = None  # the JSON field of a successful answer holding a bearer token
    success: Signals = Signals()
    failure: Signals = Signals()


@dataclass(frozen=True)
class Whoami:
    """A page of the application that says who is signed in, asked server to server."""

    path: str
    method: str = "GET"
    json: tuple[str, ...] = ()  # the user name's place in a JSON answer ("user.email")
    pattern: re.Pattern[str] | None = None  # or a pattern over the answer's text
    header: str | None = None  # or a header of the answer


@dataclass(frozen=True)
class Logout:
    path: str
    methods: tuple[str, ...] = ("POST",)
    query: tuple[tuple[str, str], ...] = ()  # values the query string must carry


@dataclass(frozen=True)
class Credentials:
    """Credentials besides cookies that never reach the application without a verified gateway
    session (Authorization and Proxy-Authorization always)."""

    headers: tuple[str, ...] = ()  # lower case
    query: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # body fields, refused outside the login request


@dataclass(frozen=True)
class Intercept:
    session_cookies: CookieNames
    login: LoginRequest = LoginRequest()
    whoami: Whoami | None = None
    logout: Logout | None = None
    credentials: Credentials = Credentials()
    enrol_unknown_users: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)


def read_intercept(r: Reader, p: KeyPath) -> Intercept | None:
    if r.mapping(p, required=True) is None:
        return None
    for old, hint in _RENAMED.items():
        for where in (p, (*p, "login")):
            if r.has((*where, old)):
                r.error((*where, old), f"{setting_name((*where, old))}: {hint}", at_key=True)
    r.unknown_keys(p, _INTERCEPT_KEYS, _RENAMED_KEYS[_AT])
    cookies: list[str] = []
    token_login = bool(r.value((*p, "login", "token")))
    for item, name in r.strings((*p, "session_cookies"), required=not token_login):
        if not _COOKIE_NAME.fullmatch(name) or name.strip("*?") == "":
            r.error(item, f'"{name}" is not a cookie name or a pattern such as "DW*"')
        else:
            cookies.append(name)
    login = _login(r, (*p, "login"))
    whoami = _whoami(r, (*p, "whoami"))
    if login.username_field is None and login.account is None and whoami is None:
        message = (
            f"{setting_name((*p, 'login'))} names no user: give username_field (the form's "
            "user-name field), account (the one account a form without one signs in), or whoami"
        )
        r.error((*p, "login"), message, at_key=True)
    intercept = Intercept(
        session_cookies=CookieNames(cookies),
        login=login,
        whoami=whoami,
        logout=_logout(r, (*p, "logout")),
        credentials=_credentials(r, (*p, "credentials")),
        enrol_unknown_users=r.boolean((*p, "enrol_unknown_users"), False),
    )
    return Intercept(**{**intercept.__dict__, "warnings": weaknesses(intercept)})


def _login(r: Reader, p: KeyPath) -> LoginRequest:
    r.mapping(p)
    r.unknown_keys(p, _LOGIN_KEYS, _RENAMED_KEYS[f"{_AT}.login"])
    path = url_path(r, (*p, "path"), "/login") or "/login"
    field_path = (*p, "username_field")
    account_path = (*p, "account")
    account = r.string(account_path).strip().lower() or None
    username_field: str | None = r.string(field_path, "username").strip() or "username"
    if account is not None:
        username_field = None
    if account is not None and r.has(field_path) and r.value(field_path) is not None:
        message = "give username_field or account, not both"
        r.error(account_path, f"{setting_name(p)}: {message}", at_key=True)
    return LoginRequest(
        path=path,
        method=token(r, (*p, "method"), "an HTTP method such as POST", "POST").upper(),
        fields=_values(r, (*p, "fields")),
        username_field=username_field,
        account=account,
        token=r.string((*p, "token")).strip() or None,
        success=_signals(r, (*p, "success")),
        failure=_signals(r, (*p, "failure")),
    )


def _values(r: Reader, p: KeyPath) -> tuple[tuple[str, str], ...]:
    """A mapping of field names to the text values they must have."""
    found: list[tuple[str, str]] = []
    for key, value in (r.mapping(p) or {}).items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            r.error((*p, key), f"{setting_name((*p, key))} must be text")
        else:
            found.append((str(key), str(value)))
    return tuple(found)


def _signals(r: Reader, p: KeyPath) -> Signals:
    r.mapping(p)
    r.unknown_keys(p, _SIGNAL_KEYS[str(p[-1])])
    statuses = r.sequence((*p, "status"))
    return Signals(
        statuses=tuple(
            r.integer((*p, "status", index), 0, 100, 599) for index in range(len(statuses))
        ),
        locations=tuple(url_path(r, item) or "" for item, _ in r.strings((*p, "location"))),
    )


def _whoami(r: Reader, p: KeyPath) -> Whoami | None:
    if r.value(p) is None:
        return None
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _WHOAMI_KEYS)
    ways = [key for key in ("json", "pattern", "header") if r.value((*p, key)) is not None]
    if len(ways) != 1:
        message = "whoami reads the user from exactly one of json, pattern or header"
        r.error(p, f"{message}, not {len(ways)}", at_key=True)
    pattern: re.Pattern[str] | None = None
    text = r.string((*p, "pattern")).strip()
    if text:
        try:
            pattern = re.compile(text)
        except re.error as exc:
            r.error((*p, "pattern"), f"the whoami pattern is not a regular expression: {exc}")
        else:
            if pattern.groups > 1:
                message = "the whoami pattern must have at most one group (the user name)"
                r.error((*p, "pattern"), message)
    json_path = r.string((*p, "json")).strip()
    header = token(r, (*p, "header"), "a header name") or None
    return Whoami(
        path=url_path(r, (*p, "path"), "/") or "/",
        method=token(r, (*p, "method"), "an HTTP method such as GET", "GET").upper(),
        json=tuple(json_path.split(".")) if json_path else (),
        pattern=pattern,
        header=header,
    )


def _logout(r: Reader, p: KeyPath) -> Logout | None:
    if r.value(p) is None:
        return None
    if r.mapping(p, required=True) is None:
        return None
    r.unknown_keys(p, _LOGOUT_KEYS)
    methods = [
        token(r, item, "an HTTP method such as POST").upper()
        for item, _ in r.strings((*p, "methods"))
    ]
    return Logout(
        path=url_path(r, (*p, "path"), "/logout") or "/logout",
        methods=tuple(dict.fromkeys(methods)) or ("POST",),
        query=_values(r, (*p, "query")),
    )


def _credentials(r: Reader, p: KeyPath) -> Credentials:
    r.mapping(p)
    r.unknown_keys(p, _CREDENTIALS_KEYS)
    headers = [token(r, item, "a header name").lower() for item, _ in r.strings((*p, "headers"))]
    query = [name for _, name in r.strings((*p, "query"))]
    fields = [name for _, name in r.strings((*p, "fields"))]
    return Credentials(
        headers=tuple(dict.fromkeys(headers)),
        query=tuple(dict.fromkeys(query)),
        fields=tuple(dict.fromkeys(fields)),
    )


def weaknesses(config: Intercept) -> tuple[str, ...]:
    """What an operator should know about these settings: each one a plain sentence."""
    found: list[str] = []
    login = config.login
    if config.whoami is None:
        found.append(
            "no whoami: the gateway trusts its own reading of the login and the answer's "
            "status and Location to know who signed in and whether it worked; set whoami so "
            "the application says who is signed in"
        )
        if any(200 <= status < 300 for status in login.success.statuses):
            found.append(
                "success.status lists a 2xx status without whoami: a page that starts a "
                "session before it checks the password (PHP's session_start) passes it on a "
                "wrong password too"
            )
    if login.account is not None:
        found.append(
            f'the login names no user: everyone with its password is "{login.account}", and '
            "the first of them to enrol decides the second factor of all (a shared login)"
        )
    if any(pattern.strip("*?") != pattern for pattern in config.session_cookies.patterns):
        found.append(
            "session_cookies has a pattern: check with `gateway intercept probe` that it "
            "matches the cookies the application really sets"
        )
    return tuple(found)
