"""What one policy file says on its own, and the checks that span files.

Reading a policy file (gateway.policy.loader) depends on nothing but the file's parsed Document:
its company or its access rules, its own errors, and what it claims (its company id, its
members' domains, users and groups, its applications). So a reading is kept while the file's
content stays the same, and a reload reads again only the files that changed. The checks that
span files (a company id, a member or an application claimed by two files; an application the
settings do not know) are made by `combine`, over every file's reading in file order, every
time: each error lands where checking while reading put it, and a file with such an error
contributes nothing, as a file with an error of its own. (A file with a cross-file error now
also shows its own errors found after it, such as provider_mfa's.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from gateway.config_errors import ConfigError
from gateway.policy.model import AccessRule, Company
from gateway.yaml_document import Document

# what a Claim claims: a company id (the file name), a member, an application's rules
COMPANY_ID, APPLICATION = "company id", "application"
MEMBER_KINDS = ("domain", "user", "group")


@dataclass(frozen=True)
class Claim:
    """Something a file claims for itself alone. `at`: how many of the file's own errors were
    found before it was read (its error, if any, goes there); `line`: where that error points."""

    kind: str  # COMPANY_ID, APPLICATION or one of MEMBER_KINDS
    value: str
    line: int
    at: int


@dataclass(frozen=True, eq=False)
class FileReading:
    """One policy file read on its own: a pure function of its Document (the cache key: a
    reading is reused while loading the file gives the very same Document object).

    `errors`: its own errors, in the order they were found; `company` (a company file) and
    `rules` (an access file, by application) only when it has none of its own in what it says
    (`errors` may still hold the Document's); `claims` in the order they were read."""

    document: Document
    errors: tuple[ConfigError, ...] = ()
    company: Company | None = None
    company_name: str = ""  # named in another file's error when this one claimed first
    rules: Mapping[str, tuple[AccessRule, ...]] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()

    @property
    def file(self) -> str:
        return self.document.file


@dataclass
class Combined:
    """Every file's contribution: the companies and rules of the files without errors, and every
    error of every file (each file's sorted by line, files in order)."""

    companies: list[Company] = field(default_factory=list)
    rules: dict[str, tuple[AccessRule, ...]] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)


def combine(readings: Iterable[FileReading], known_apps: Collection[str] | None) -> Combined:
    """The readings in file order, with the checks that span files."""
    out = Combined()
    # the value -> the first file claiming it (and its company's name), by kind
    owners: dict[str, dict[str, tuple[str, str]]] = {}
    for reading in readings:
        found: list[tuple[int, ConfigError]] = []
        for claim in reading.claims:
            taken = owners.setdefault(claim.kind, {})
            owner = taken.setdefault(claim.value, (reading.company_name, reading.file))
            message = _problem(claim, owner, reading.file, known_apps)
            if message is not None:
                found.append((claim.at, ConfigError(reading.file, claim.line, message)))
        out.errors.extend(sorted(_merged(reading.errors, found), key=lambda error: error.line))
        if found:
            continue  # an error of its own would have kept it out too
        if reading.company is not None:
            out.companies.append(reading.company)
        out.rules.update(reading.rules)
    return out


def _problem(
    claim: Claim, owner: tuple[str, str], file: str, known_apps: Collection[str] | None
) -> str | None:
    if claim.kind == COMPANY_ID:
        if owner[1] == file:
            return None
        return f'the company id "{claim.value}" (the file name) is taken by {owner[1]}'
    if claim.kind == APPLICATION:
        if owner[1] != file:
            return (
                f'application "{claim.value}" already has rules in {owner[1]}; '
                "keep them in one file"
            )
        if known_apps is not None and claim.value not in known_apps:
            known = ", ".join(sorted(known_apps)) or "none"
            return f'no application named "{claim.value}" in the settings; known: {known}'
        return None
    if owner[1] == file:
        return None
    return f'{claim.kind} "{claim.value}" is already claimed by company "{owner[0]}" in {owner[1]}'


def _merged(
    own: tuple[ConfigError, ...], found: list[tuple[int, ConfigError]]
) -> list[ConfigError]:
    """The file's own errors with each cross-file error put back where it was found."""
    if not found:
        return list(own)
    merged: list[ConfigError] = []
    pending = iter(found)
    upcoming = next(pending, None)
    for index in range(len(own) + 1):
        while upcoming is not None and upcoming[0] == index:
            merged.append(upcoming[1])
            upcoming = next(pending, None)
        if index < len(own):
            merged.append(own[index])
    return merged
