"""A company file's `members:` block: email domains, user names or addresses, and directory
groups (the groups portal mode learns at sign-in, from LDAP or the users file). Each domain,
user and group belongs to one company only; a company needs at least one of them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gateway.policy.file_reading import Claim
from gateway.yaml_document import KeyPath
from gateway.yamlsource import Keys, Reader

_DOMAIN = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+")
KINDS = ("domains", "users", "groups")
_KEYS = Keys("company", "members", KINDS)


@dataclass(frozen=True)
class Members:
    domains: tuple[str, ...]
    users: tuple[str, ...]
    groups: tuple[str, ...]
    # each domain, user and group, claimed where it is listed (see Claim)
    claims: tuple[Claim, ...] = ()


def read_members(reader: Reader, company: str) -> Members:
    before = len(reader.errors)
    reader.mapping(("members",))
    reader.unknown_keys(("members",), _KEYS)
    found: dict[str, list[tuple[KeyPath, str]]] = {}
    claims: list[Claim] = []
    for kind in KINDS:
        found[kind] = _member_list(reader, ("members", kind), kind)
        claims += (
            Claim(kind[:-1], text, reader.document.line(item), len(reader.errors))
            for item, text in found[kind]
        )
    if not any(found.values()) and len(reader.errors) == before:
        where = ("members",) if reader.has(("members",)) else ("company",)
        reader.error(
            where,
            f'company "{company}" has no members: list at least one domain, user or group '
            "under members",
            at_key=True,
        )
    domains, users, groups = (tuple(text for _, text in found[kind]) for kind in KINDS)
    return Members(domains, users, groups, tuple(claims))


def _invisible(text: str) -> str | None:
    """The first character of `text` that shows nothing (a format or control character, such
    as U+200B or a byte-order mark), if any: two names that look alike must be one name."""
    return next((c for c in text if unicodedata.category(c) in ("Cf", "Cc", "Co", "Cn")), None)


def _member_list(reader: Reader, path: KeyPath, kind: str) -> list[tuple[KeyPath, str]]:
    items: dict[str, KeyPath] = {}
    for item, text in reader.strings(path):
        text = text.lower()
        if kind == "domains" and text.startswith("@"):
            reader.error(item, f'write the domain without "@": "{text[1:]}"')
        elif kind == "domains" and not _DOMAIN.fullmatch(text):
            reader.error(item, f'"{text}" is not an email domain such as "acme.example"')
        elif kind == "groups" and (
            not text.strip() or "," in text or any(ord(c) < 0x20 for c in text)
        ):
            reader.error(item, f'"{text}" is not a group name (no commas or control characters)')
        elif kind == "users" and any(c.isspace() for c in text):
            reader.error(item, f'"{text}" is not a user name or address: it contains a space')
        elif (hidden := _invisible(text)) is not None:
            reader.error(
                item,
                f"{kind[:-1]} {text.encode('unicode_escape').decode()!r} contains an invisible "
                f"character (U+{ord(hidden):04X}): it would name someone else than it shows",
            )
        else:
            items.setdefault(text.strip(), item)
    return [(item, text) for text, item in items.items()]
