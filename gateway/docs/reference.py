"""The key reference: which keys the loaders accept (their Keys tables, registered when
gateway.settings.load and gateway.policy.loader are imported), what reference.yaml says of each,
and the Markdown written from both. A key is named by its path in the file, with <placeholders>
for names the file chooses, [] for list items and " (kind: http)" for a table that depends on a
value: "listen.port", "applications.<name>.portal.ldap.url",
"senders.<channel>.from (kind: smtp)"."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import gateway.policy.loader
import gateway.settings.load  # noqa: F401 - importing the loaders registers their Keys tables
from gateway.yamlsource import TABLES, Keys

SOURCE = Path(__file__).with_name("reference.yaml")
DOCS = Path(__file__).parents[2] / "docs"
FIELDS = ("type", "default", "example", "text")
SCHEMAS = ("settings", "company", "access")
# the files written, with the schemas each documents
FILES: dict[str, tuple[str, ...]] = {
    "settings-reference.md": ("settings",),
    "policy-reference.md": ("company", "access"),
}
_TITLES = {
    "settings-reference.md": "Settings reference",
    "policy-reference.md": "Policy reference",
}
_INTROS = {
    "settings-reference.md": (
        "Every key of the settings file (`gateway run -c gateway.yaml`; `gateway.example.yaml` is "
        "a commented example). Durations are written like `90s`, `30m`, `12h`, `21d` or "
        "`1h30m`; relative paths are taken from the settings file's directory. "
        "`gateway policy check DIR -c gateway.yaml` reports every mistake at once, with its "
        "line. A secret source is `{env: NAME}` or `{file: path}` ([the last "
        "section](#secret-sources-every-key-of-type-secret-source)). The settings in prose: "
        "[settings.md](settings.md)."
    ),
    "policy-reference.md": (
        "Every key of the policy files: one company file per company (with `company:`; its id is "
        "the file's name) and access files (with `applications:`), all in the settings' "
        "`policy_dir`. Durations are written like `90s`, `30m`, `12h`, `21d` or `1h30m`. What "
        "the policy does, in prose: [policy.md](policy.md)."
    ),
}
_PARTS = {"company": "Company files", "access": "Access files"}
_TITLES_OF = {"<secret>": "Secret sources (every key of type secret source)"}
_DOC_LINK = re.compile(r"docs/([a-z0-9-]+\.(?:md|yaml))")


@dataclass(frozen=True)
class Entry:
    type: str
    default: str
    example: str
    text: str


def key_id(table: Keys, name: str) -> str:
    """The documented name of a key of `table`."""
    return table.path(name) + (f" ({table.when})" if table.when else "")


def tables(schema: str) -> list[Keys]:
    """The schema's tables of accepted keys, each once, in the order the loaders made them."""
    found: dict[tuple[str, str], Keys] = {}
    for table in TABLES:
        if table.schema == schema and not table.retired:
            found.setdefault((table.where, table.when), table)
    return list(found.values())


def accepted(schema: str) -> list[str]:
    """Every key the loaders accept in files of `schema` (former names, refused with their new
    one, are not)."""
    return list(
        dict.fromkeys(key_id(table, name) for table in tables(schema) for name in table.names)
    )


def documentation(source: Path = SOURCE) -> dict[str, dict[str, Entry]]:
    """reference.yaml: per schema, per key, its entry. Raises ValueError on a malformed entry."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    found: dict[str, dict[str, Entry]] = {}
    for schema in SCHEMAS:
        found[schema] = {}
        for key, entry in (data.get(schema) or {}).items():
            found[schema][str(key)] = _entry(schema, str(key), entry)
    return found


def _entry(schema: str, key: str, entry: Any) -> Entry:
    if not isinstance(entry, dict) or set(entry) != set(FIELDS):
        raise ValueError(f"{schema} {key}: an entry has exactly {', '.join(FIELDS)}")
    values = {field: entry[field] for field in FIELDS}
    for field, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{schema} {key}: {field} must be text (quote true, 8080, ...)")
    return Entry(**values)


def render(file: str, docs: dict[str, dict[str, Entry]]) -> str:
    lines = [
        f"# {_TITLES[file]}",
        "",
        "<!-- Written by `python -m gateway.docs` from the loaders' key tables and",
        "     gateway/docs/reference.yaml: edit those, then run it again. -->",
        "",
        _INTROS[file],
        "",
    ]
    for schema in FILES[file]:
        if schema in _PARTS:
            lines += [f"## {_PARTS[schema]}", ""]
        level = "###" if schema in _PARTS else "##"
        for table in _ordered(tables(schema)):
            lines += _section(schema, table, docs[schema], level)
    return "\n".join(lines).rstrip("\n") + "\n"


def _ordered(found: list[Keys]) -> Iterator[Keys]:
    """The tables depth first from the top level: a mapping's table right after its parent's."""
    done: set[int] = set()

    def walk(table: Keys) -> Iterator[Keys]:
        done.add(id(table))
        yield table
        for name in table.names:
            for child in found:
                if id(child) not in done and _is_child(child.where, table.path(name)):
                    yield from walk(child)

    for table in found:
        if table.where == "":
            yield from walk(table)
    for table in found:  # tables of no one key, such as <secret>
        if id(table) not in done:
            yield from walk(table)


def _is_child(where: str, key_path: str) -> bool:
    """Whether `where` is the mapping at `key_path` or an item of it ("applications.<name>")."""
    item = re.escape(key_path) + r"\.<[^>]+>(\[\])?"
    return where == key_path or re.fullmatch(item, where) is not None


def _section(schema: str, table: Keys, docs: dict[str, Entry], level: str) -> list[str]:
    title = _TITLES_OF.get(table.where) or (f"`{table.where}`" if table.where else "Top level")
    if table.when:
        title += f" with `{table.when}`"
    lines = [f"{level} {title}", ""]
    lines += [
        "| Key | Type | Default | Example | What it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in table.names:
        entry = docs.get(key_id(table, name))
        if entry is None:
            lines.append(f"| `{name}` | | | | (not documented) |")
            continue
        cells = (
            f"`{name}`",
            _cell(entry.type),
            _code(entry.default),
            f"`{name}: {_cell(entry.example)}`",
            _cell(entry.text),
        )
        lines.append("| " + " | ".join(cells) + " |")
    retired = [
        name
        for other in TABLES
        if other.retired and other.schema == schema and other.where == table.where
        for name in other.names
    ]
    if retired:
        names = ", ".join(f"`{name}`" for name in dict.fromkeys(retired))
        lines += ["", f"Former names, refused with their new form in the message: {names}."]
    return [*lines, ""]


def _cell(text: str) -> str:
    """One line of a table cell; "docs/x.md" becomes a link beside this file."""
    text = " ".join(text.split()).replace("|", "\\|")
    return _DOC_LINK.sub(lambda match: f"[{match[1]}]({match[1]})", text)


def _code(text: str) -> str:
    """A default: a value in code, a phrase ("none", "required with bind_dn") as it is."""
    value = text.startswith(("{", "[", '"')) or (" " not in text and text not in _PHRASES)
    return f"`{' '.join(text.split())}`" if value else _cell(text)


_PHRASES = ("none", "required")


def write(docs_dir: Path = DOCS) -> list[Path]:
    """Write every reference file; the paths that changed."""
    docs = documentation()
    changed = []
    for file in FILES:
        path = docs_dir / file
        text = render(file, docs)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale(docs_dir: Path = DOCS) -> list[Path]:
    """The reference files that differ from what `write` would write now."""
    docs = documentation()
    return [
        docs_dir / file
        for file in FILES
        if not (docs_dir / file).exists()
        or (docs_dir / file).read_text(encoding="utf-8") != render(file, docs)
    ]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is not current")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs directory")
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.docs)
        for path in old:
            print(f"{path}: not current; run python -m gateway.docs")
        return 1 if old else 0
    for path in write(args.docs):
        print(f"wrote {path}")
    return 0
