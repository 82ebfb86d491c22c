"""Text in the Python sources that people may read and that no gettext call wraps: each string
literal of three words or more in the people-facing modules (handlers, errors, senders, notices),
less docstrings, log and audit lines, and errors meant for operators. A heuristic, tuned to
find sentences: what it counts per file is the allow-list of tests/i18n/test_catalogues.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
PEOPLE_FACING = (
    "handlers",
    "middleware",
    "errors.py",
    "notices.py",
    "senders",
    "signin/remember.py",
    "pages.py",
)
# answers for load balancers and scrapers, not for people
MACHINES_ONLY = ("handlers/ops/health.py", "handlers/ops/metrics_page.py")
WRAPPERS = {"_", "N_", "gettext", "ngettext"}
# calls whose text is for operators, logs or machines, not for the person at the page
NOT_FOR_PEOPLE = {
    "debug", "info", "warning", "error", "exception", "log", "audit", "ValueError", "TypeError",
    "RuntimeError", "SettingsError", "ApiError", "getLogger", "KeyError", "SendFailed",
    "HTTPBadRequest", "json_response", "add", "getenv", "AssertionError", "get",
}  # fmt: skip
MACHINE = "# i18n: not for people"  # a line's text that is for browsers or machines
HEADER_VALUE = re.compile(r"=[^ ]*;|'self'|max-age=|^%")  # a cookie, CSP or cache header
WORDS = re.compile(r"[A-Za-z][a-z']*")


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def unwrapped(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call) and (_name(node) in WRAPPERS | NOT_FOR_PEOPLE):
            for inner in ast.walk(node):
                skip.add(id(inner))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
            )
            for part in node.values:
                skip.add(id(part))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if MACHINE in lines[node.lineno - 1] or HEADER_VALUE.search(text):
            continue
        if len(WORDS.findall(text)) >= 3 and " " in text.strip() and not text.startswith("/"):
            found.append((node.lineno, text))
    return found


def people_facing_files() -> list[Path]:
    files: list[Path] = []
    for entry in PEOPLE_FACING:
        target = PACKAGE / entry
        files.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return [path for path in files if not str(path).endswith(MACHINES_ONLY)]


def counts() -> dict[str, int]:
    result = {}
    for path in people_facing_files():
        found = unwrapped(path)
        if found:
            result[str(path.relative_to(PACKAGE.parent))] = len(found)
    return result


if __name__ == "__main__":
    for name, count in counts().items():
        print(f"    {name!r}: {count},")
