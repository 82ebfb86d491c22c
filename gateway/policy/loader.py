"""Reads a directory of policy files into a Policy, reporting every error of every file at once.

Each file is read on its own (its company or its access rules, its errors, what it claims), and
that reading is kept while the file's content stays the same; gateway.policy.file_reading
combines the readings with the checks that span files."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from gateway.config_errors import ConfigError, ConfigInvalid
from gateway.durations import format_duration
from gateway.i18n import LOCALES
from gateway.policy.access_rules import read_rule
from gateway.policy.entries import policy_entries
from gateway.policy.file_reading import APPLICATION, COMPANY_ID, Claim, FileReading, combine
from gateway.policy.members import read_members
from gateway.policy.model import (
    MAX_REMEMBER_BROWSER,
    METHODS,
    MIN_REMEMBER_BROWSER,
    AccessRule,
    AccountType,
    AttemptLimits,
    Branding,
    CodeLimits,
    Company,
    Policy,
    SessionLimits,
    TrustedNetworks,
    is_colour,
    is_logo,
)
from gateway.policy.provider_mfa import read_provider_mfa
from gateway.yaml_document import Document, DocumentCache, KeyPath, load_yaml_file
from gateway.yamlsource import Keys, Reader

_COMPANY_KEYS = Keys("company", "", (
    "company", "members", "account_type", "admins", "methods", "enforce_2fa", "deferral",
    "trusted_networks", "remember_browser", "branding", "session", "attempts", "provider_mfa",
    "language",
))  # fmt: skip
_TRUSTED_KEYS = Keys("company", "trusted_networks", ("networks", "reprompt_after"))
_METHODS_KEYS = Keys("company", "methods", ("allowed", "default", "codes"))
_CODES_KEYS = Keys("company", "methods.codes", tuple(CodeLimits.__dataclass_fields__))
_BRANDING_KEYS = Keys("company", "branding", ("name", "logo", "favicon", "colour"))
_SESSION_KEYS = Keys("company", "session", ("idle_timeout", "lifetime"))
_ATTEMPTS_KEYS = Keys("company", "attempts", tuple(AttemptLimits.__dataclass_fields__))
_ACCESS_KEYS = Keys("access", "", ("applications",))


def load_policy_dir(path: Path, known_apps: Collection[str] | None = None) -> Policy:
    """Load and check every policy file; raises ConfigInvalid listing all errors."""
    policy, errors = _load(path, known_apps)
    if errors:
        raise ConfigInvalid(errors)
    return policy


def check_policy_dir(path: Path, known_apps: Collection[str] | None = None) -> list[ConfigError]:
    """Every error in the policy directory; an empty list means it loads cleanly."""
    return _load(path, known_apps)[1]


def _load(directory: Path, known_apps: Collection[str] | None) -> tuple[Policy, list[ConfigError]]:
    try:
        files, entry_errors = policy_entries(directory)
    except OSError as exc:
        reason = "the directory does not exist" if isinstance(exc, FileNotFoundError) else None
        message = reason or f"cannot read the policy directory: {exc.strerror or exc}"
        return Policy.EMPTY, [ConfigError(str(directory), 0, message)]
    global _documents, _readings, _policy
    documents, known = dict(_documents), _readings
    readings = [_reading(file, load_yaml_file(file, documents), known) for file in files]
    combined = combine(readings, known_apps)
    policy = Policy(tuple(combined.companies), combined.rules, reuse=_policy)
    # the caches keep the files there now only
    _documents = {path: documents[path] for path in map(str, files) if path in documents}
    _readings = {reading.file: reading for reading in readings}
    _policy = policy
    return policy, [*entry_errors, *combined.errors]


# The last load: each file's parsed Document (kept by content, byte for byte), its reading, and
# the Policy made of them. A reload parses and reads only the files whose content changed, and
# compiles only their access rules: a thousand unchanged files are read from disk and compared
# in milliseconds, while parsing and reading them took most of a load's time.
_documents: DocumentCache = {}
_readings: dict[str, FileReading] = {}
_policy: Policy = Policy.EMPTY


def _reading(file: Path, document: Document, known: dict[str, FileReading]) -> FileReading:
    """The file's reading: the last one while its Document is the very same (same content)."""
    reading = known.get(str(file))
    if reading is not None and reading.document is document:
        return reading
    return _read_file(file, document)


def _read_file(file: Path, document: Document) -> FileReading:
    """What `file` says on its own (the checks that span files are `combine`'s)."""
    reader = Reader(document)
    data = document.data
    reading = FileReading(document)
    if data is None and document.errors:
        pass  # the file could not be read or parsed; that is the one error to report
    elif data is None:
        reader.error((), "the file is empty; a policy file has company: or applications:")
    elif not isinstance(data, dict):
        reader.error((), "a policy file must be a mapping with company: or applications:")
    elif "company" in data and "applications" in data:
        reader.error((), "a policy file has company: or applications:, not both; split it in two")
    elif "company" in data:
        reading = _company(reader, file)
    elif "applications" in data:
        reading = _applications(reader, file)
    else:
        reader.error(
            (),
            "this is neither a company file (with company:) nor an access file "
            "(with applications:)",
        )
    return replace(reading, errors=tuple(reader.errors))


def _company(reader: Reader, file: Path) -> FileReading:
    before = len(reader.errors)
    reader.unknown_keys((), _COMPANY_KEYS)
    name = reader.string(("company",), required=True).strip()
    line = reader.document.key_line(("company",))
    claims = [Claim(COMPANY_ID, file.stem, line, len(reader.errors))]  # the file name is its id
    members = read_members(reader, name)
    claims += members.claims
    account_type = reader.choice(("account_type",), tuple(AccountType), AccountType.PARTNER)
    domain_names, user_names = set(members.domains), set(members.users)
    admins: list[str] = []
    for item, admin in reader.strings(("admins",)):
        admin = admin.lower()
        domain = admin.rpartition("@")[2] if "@" in admin else None
        if admin not in user_names and domain not in domain_names:
            reader.error(
                item,
                f'admin "{admin}" is not a member of this company; add the address to '
                "members.users or its domain to members.domains",
            )
        elif admin not in admins:
            admins.append(admin)

    methods, default_method = _methods(reader)
    code_limits = _code_limits(reader)
    enforce = reader.boolean(("enforce_2fa",), False)
    deferral = reader.duration(("deferral",), timedelta(hours=48))

    reader.mapping(("trusted_networks",))
    reader.unknown_keys(("trusted_networks",), _TRUSTED_KEYS)
    trusted = TrustedNetworks(
        reader.networks(("trusted_networks", "networks")),
        reader.duration(("trusted_networks", "reprompt_after"), timedelta(days=21)),
    )
    remember = _remember_browser(reader, AccountType(account_type))
    branding = _branding(reader, name)
    language = reader.choice(("language",), LOCALES) or None  # gateway.i18n's
    session = _session(reader)
    attempts = _attempts(reader)
    company = None
    if len(reader.errors) == before:
        company = Company(
            id=file.stem,
            name=name,
            source=str(file),
            domains=members.domains,
            users=members.users,
            groups=members.groups,
            account_type=AccountType(account_type),
            admins=tuple(admins),
            methods=methods,
            default_method=default_method,
            enforce_2fa=enforce,
            enforce_line=reader.document.key_line(("enforce_2fa",)),
            deferral=deferral,
            trusted_networks=trusted,
            remember_browser=remember,
            provider_mfa=read_provider_mfa(reader),
            branding=branding,
            language=language,
            session=session,
            codes=code_limits,
            attempts=attempts,
        )
    return FileReading(reader.document, company=company, company_name=name, claims=tuple(claims))


def _remember_browser(reader: Reader, account_type: AccountType) -> timedelta | None:
    """`remember_browser: 30d`: off unless set, and never for a client company."""
    path = ("remember_browser",)
    if not reader.has(path):
        return None
    before = len(reader.errors)
    remember = reader.duration(path, MAX_REMEMBER_BROWSER)
    if len(reader.errors) != before:
        return None
    if account_type is AccountType.CLIENT:
        reader.error(
            path,
            "remember_browser is never allowed for a client company (account_type: client): "
            "client accounts always answer the second factor",
            at_key=True,
        )
        return None
    if not MIN_REMEMBER_BROWSER <= remember <= MAX_REMEMBER_BROWSER:
        reader.error(
            path,
            f"remember_browser ({format_duration(remember)}) must be from "
            f"{format_duration(MIN_REMEMBER_BROWSER)} to {format_duration(MAX_REMEMBER_BROWSER)}",
        )
        return None
    return remember


def _methods(reader: Reader) -> tuple[tuple[str, ...], str]:
    reader.mapping(("methods",))
    reader.unknown_keys(("methods",), _METHODS_KEYS)
    allowed_path, default_path = ("methods", "allowed"), ("methods", "default")
    choices = f"choose from {', '.join(METHODS)}"
    allowed: list[str] = []
    for item, method in reader.strings(allowed_path, required=reader.has(allowed_path)):
        if method not in METHODS:
            reader.error(item, f'"{method}" is not a second-factor method; {choices}')
        elif method not in allowed:
            allowed.append(method)
    if not reader.has(allowed_path):
        allowed = ["totp"]
    default = reader.string(default_path, allowed[0] if allowed else "totp")
    if default not in METHODS:
        reader.error(default_path, f'"{default}" is not a second-factor method; {choices}')
    elif allowed and default not in allowed:
        listed = ", ".join(allowed)
        reader.error(
            default_path, f'the default method "{default}" is not in methods.allowed ({listed})'
        )
    return tuple(allowed) or ("totp",), default


def _branding(reader: Reader, company_name: str) -> Branding:
    reader.mapping(("branding",))
    reader.unknown_keys(("branding",), _BRANDING_KEYS)
    name = reader.string(("branding", "name"), company_name).strip() or company_name
    images = {}
    for key in ("logo", "favicon"):
        image = reader.string(("branding", key)).strip() or None
        if image is not None and not is_logo(image):
            reader.error(
                ("branding", key),
                f'branding.{key} must be a path such as "/{key}.png" or an https URL, '
                f'not "{image}"',
            )
            image = None
        images[key] = image
    colour = reader.string(("branding", "colour"), "#1f4e8c").strip()
    if not is_colour(colour):
        reader.error(
            ("branding", "colour"),
            f'branding.colour must be a colour such as "#aa3300" or "#a30", not "{colour}"',
        )
        colour = "#1f4e8c"
    return Branding(name, images["logo"], colour, images["favicon"])


def _code_limits(reader: Reader) -> CodeLimits:
    path = ("methods", "codes")
    reader.mapping(path)
    reader.unknown_keys(path, _CODES_KEYS)
    default = CodeLimits()
    return CodeLimits(
        valid_for=reader.duration((*path, "valid_for"), default.valid_for),
        tries=reader.integer((*path, "tries"), default.tries, 1, 10),
        resend_after=reader.duration((*path, "resend_after"), default.resend_after),
        sends_per_hour=reader.integer((*path, "sends_per_hour"), default.sends_per_hour, 1, 60),
    )


def _attempts(reader: Reader) -> AttemptLimits:
    path = ("attempts",)
    reader.mapping(path)
    reader.unknown_keys(path, _ATTEMPTS_KEYS)
    default = AttemptLimits()
    limits = {
        name: reader.integer((*path, name), getattr(default, name), 1, 100)
        for name in ("per_user_and_address", "per_user", "per_address", "per_user_per_day")
    }
    free = reader.integer((*path, "free"), default.free, 0, 100)
    window = reader.duration((*path, "window"), default.window)
    first_delay = reader.duration((*path, "first_delay"), default.first_delay)
    max_delay = reader.duration((*path, "max_delay"), default.max_delay)
    one, user, address = (limits["per_user_and_address"], limits["per_user"], limits["per_address"])
    problem = None
    if one >= user:
        problem = (
            f"attempts.per_user_and_address ({one}) must be smaller than attempts.per_user "
            f"({user}), or an attacker at one address could lock the user out everywhere"
        )
    elif one > address:
        problem = (
            f"attempts.per_user_and_address ({one}) cannot be larger than attempts.per_address "
            f"({address})"
        )
    elif window > timedelta(days=1):
        problem = (
            f"attempts.window ({format_duration(window)}) is longer than a day; failures are "
            "kept for a day"
        )
    elif first_delay > max_delay:
        problem = (
            f"attempts.first_delay ({format_duration(first_delay)}) is longer than "
            f"attempts.max_delay ({format_duration(max_delay)})"
        )
    if problem is not None:
        reader.error(path, problem, at_key=True)
        return default
    return AttemptLimits(
        window, one, user, address, limits["per_user_per_day"], free, first_delay, max_delay
    )


def _session(reader: Reader) -> SessionLimits:
    reader.mapping(("session",))
    reader.unknown_keys(("session",), _SESSION_KEYS)
    idle = reader.duration(("session", "idle_timeout"), timedelta(minutes=30))
    lifetime = reader.duration(("session", "lifetime"), timedelta(hours=12))
    if idle > lifetime:
        reader.error(
            ("session",),
            f"session.idle_timeout ({format_duration(idle)}) is longer than session.lifetime "
            f"({format_duration(lifetime)})",
            at_key=True,
        )
    return SessionLimits(idle, lifetime)


def _applications(reader: Reader, file: Path) -> FileReading:
    before = len(reader.errors)
    reader.unknown_keys((), _ACCESS_KEYS)
    apps = reader.mapping(("applications",), required=True) or {}
    found: dict[str, tuple[AccessRule, ...]] = {}
    claims: list[Claim] = []
    for app in apps:
        path: KeyPath = ("applications", app)
        line = reader.document.key_line(path)
        claims.append(Claim(APPLICATION, app, line, len(reader.errors)))
        rules = (
            read_rule(reader, (*path, index), file) for index in range(len(reader.sequence(path)))
        )
        found[app] = tuple(rule for rule in rules if rule is not None)
    kept = found if len(reader.errors) == before else {}
    return FileReading(reader.document, rules=kept, claims=tuple(claims))
