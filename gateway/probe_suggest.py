"""The `intercept:` settings `gateway intercept probe` suggests, as YAML lines, from the login
form and what the wrong and the right password's answers did (Seen): the cookies only the
successful login set (a name derived from a hash becomes a pattern), the status it answered,
where the failed one went, and a whoami block or the advice to add one. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gateway.intercept_settings import Whoami

_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")  # a name derived from a hash (DokuWiki's DW<md5>)
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


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
