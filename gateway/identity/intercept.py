"""Intercept mode: the application keeps its login form; the gateway recognises its login
request, judges the answer (success, failure, or neither) and holds the application's session
cookies until the second factor. Pure: the handlers do the talking."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl, urlsplit

from gateway.cookies import SetCookie, parse_set_cookie
from gateway.identity.body_fields import query_fields
from gateway.identity.login_body import field_reading
from gateway.intercept_settings import Intercept, LoginRequest, Signals
from gateway.policy.model import readings

MAX_LOGIN_BODY = 256 * 1024


def is_login_target(config: LoginRequest, method: str, path: str) -> bool:
    """The login's method and path, under every reading an application server may make of a
    path (case, `;parameters`, trailing dots): a login the application routes as its own is
    the gateway's login too. Whether its `fields` are there is fields_match's."""
    if method.upper() != config.method:
        return False
    wanted = _path_readings(config.path)
    return any(reading.rstrip("/") in wanted for reading in readings(path))


@functools.lru_cache(maxsize=64)  # one per application's login path
def _path_readings(path: str) -> frozenset[str]:
    wanted = {reading.rstrip("/") for reading in readings(path)}
    return frozenset(wanted | {reading.lower() for reading in wanted})


def fields_match(required: tuple[tuple[str, str], ...], pairs: list[tuple[str, str]]) -> bool:
    """Each required field is there once, under any reading of its name, with its value."""
    for key, value in required:
        reading = field_reading(key)
        if {(k, v) for k, v in pairs if field_reading(k) == reading} != {(key, value)}:
            return False
    return True


def is_login_request(config: LoginRequest, method: str, path: str, query: str) -> bool:
    """The login, told from the request line alone (its `fields` all in the query string)."""
    return is_login_target(config, method, path) and fields_match(
        config.fields, query_fields(query)
    )


def is_logout_request(config: Intercept, method: str, path: str, query: str) -> bool:
    logout = config.logout
    return (
        logout is not None
        and method.upper() in logout.methods
        and path.rstrip("/") == logout.path.rstrip("/")
        and fields_match(logout.query, query_fields(query))
    )


@dataclass(frozen=True)
class SplitCookies:
    session: list[SetCookie]  # the application's session cookies: held by the gateway
    other: list[str]  # every other Set-Cookie line

    def other_parsed(self) -> list[SetCookie]:
        return [c for c in (parse_set_cookie(line) for line in self.other) if c is not None]


def split_set_cookies(config: Intercept, raw_headers: list[str]) -> SplitCookies:
    session: list[SetCookie] = []
    other: list[str] = []
    for raw in raw_headers:
        parsed = parse_set_cookie(raw)
        if parsed is not None and config.session_cookies.matches(parsed.name):
            session.append(parsed)
        else:
            other.append(raw)
    return SplitCookies(session=session, other=other)


def jar_after(jar: dict[str, str], split: SplitCookies) -> dict[str, str]:
    """The cookies a browser would hold after this answer: `jar` with its Set-Cookie applied."""
    after = dict(jar)
    for cookie in [*split.session, *split.other_parsed()]:
        if cookie.deleting:
            after.pop(cookie.name, None)
        else:
            after[cookie.name] = cookie.value
    return after


class Verdict(Enum):
    SUCCESS = "success"  # a new signed-in session: held until the second factor
    FAILURE = "failure"  # the application refused the password: its answer goes back
    UNCLEAR = "unclear"  # neither: every cookie is held, the person gets a page, the operator
    # an error line


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str  # what the answer showed, for the operator's log


def new_session_cookies(split: SplitCookies, sent: dict[str, str]) -> list[SetCookie]:
    """The session cookies the answer sets to a value other than the one the application got
    with the login (a page that merely starts a session keeps the value it had)."""
    return [c for c in split.session if not c.deleting and sent.get(c.name) != c.value]


def token_in_answer(field: str, body: bytes) -> str | None:
    """The bearer token a login answer's JSON body holds at `field` ("a.b" for nested)."""
    try:
        data: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    for key in field.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, str) or not data.strip() or len(data) > 8192:
        return None
    return data.strip()


def judge(
    login: LoginRequest,
    status: int,
    location: str | None,
    split: SplitCookies,
    sent: dict[str, str],
    *,
    whoami: bool,
    token: str | None = None,
) -> Judgement:
    """The login answer read without asking the application. With `whoami` a SUCCESS here only
    means "ask the application": the caller's whoami decides. `token`: the bearer token the
    answer's body holds (`login.token`), a new credential like a new session cookie."""
    target = urlsplit(location).path or "/" if location else None
    if status >= 400 or status in login.failure.statuses:
        return Judgement(Verdict.FAILURE, f"status {status}")
    if target is not None and (
        _at(target, login.failure.locations) or _back_to_login(login, location or "")
    ):
        return Judgement(Verdict.FAILURE, f"status {status} to {location}")
    if whoami:
        return Judgement(Verdict.SUCCESS, f"status {status}, asked whoami")
    changed: list[object] = [*new_session_cookies(split, sent)]
    if token is not None:
        changed.append(token)
    others = [c.name for c in split.other_parsed() if not c.deleting]
    seen = _seen(status, location, split)
    if _signals_success(login.success, status, target):
        if changed:
            names = ",".join(c.name if isinstance(c, SetCookie) else "a token" for c in changed)
            return Judgement(Verdict.SUCCESS, f"status {status}, new credential(s) {names}")
        if others:
            return Judgement(
                Verdict.UNCLEAR,
                f"{seen}: a successful answer that sets no session cookie; do the "
                "session_cookies settings name the ones it sets?",
            )
        return Judgement(Verdict.FAILURE, f"{seen}: no session cookie set")
    if 300 <= status < 400 and (changed or others):
        return Judgement(
            Verdict.UNCLEAR,
            f"{seen}: a redirect neither success nor failure settings recognise",
        )
    return Judgement(Verdict.FAILURE, f"{seen}: not a success")


def _signals_success(success: Signals, status: int, target: str | None) -> bool:
    if success.statuses:
        if status not in success.statuses:
            return False
    elif not 300 <= status < 400:
        return False
    return not success.locations or (target is not None and _at(target, success.locations))


def _back_to_login(login: LoginRequest, location: str) -> bool:
    """A redirect to the login page itself (with the login's own query values, if it has
    them): the application asks again."""
    parts = urlsplit(location)
    if (parts.path or "/").rstrip("/") != login.path.rstrip("/"):
        return False
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return all(pair in pairs for pair in login.fields)


def _at(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `path` is one of `prefixes` or under one (a prefix ending in "/" or not)."""
    for prefix in prefixes:
        bare = prefix.rstrip("/")
        if path.rstrip("/") == bare or path.startswith(bare + "/"):
            return True
    return False


def _seen(status: int, location: str | None, split: SplitCookies) -> str:
    names = [c.name for c in split.session] + [c.name for c in split.other_parsed()]
    where = f" to {location}" if location else ""
    cookies = ", cookies " + ",".join(names) if names else ", no cookies"
    return f"status {status}{where}{cookies}"
