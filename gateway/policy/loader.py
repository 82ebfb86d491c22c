"""Reads a directory of policy files into a Policy, reporting every error of every file at once."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from gateway.config_errors import ConfigError, ConfigInvalid
from gateway.durations import format_duration
from gateway.i18n import LOCALES
from gateway.policy.access_rules import read_rule
from gateway.policy.entries import policy_entries
from gateway.policy.members import Claims, read_members
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
from gateway.yaml_document import DocumentCache, KeyPath, load_yaml_file
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


@dataclass
class _Seen:
    """What earlier files claimed, for the checks that span files."""

    ids: dict[str, str] = field(default_factory=dict)
    claims: Claims = field(default_factory=dict)  # domains, users and groups, by kind
    apps: dict[str, str] = field(default_factory=dict)
    companies: list[Company] = field(default_factory=list)
    rules: dict[str, tuple[AccessRule, ...]] = field(default_factory=dict)


def _load(directory: Path, known_apps: Collection[str] | None) -> tuple[Policy, list[ConfigError]]:
    try:
        files, entry_errors = policy_entries(directory)
    except OSError as exc:
        reason = "the directory does not exist" if isinstance(exc, FileNotFoundError) else None
        message = reason or f"cannot read the policy directory: {exc.strerror or exc}"
        return Policy.EMPTY, [ConfigError(str(directory), 0, message)]
    seen = _Seen()
    errors: list[ConfigError] = list(entry_errors)
    global _documents
    documents = dict(_documents)
    for file in files:
        errors.extend(_load_file(file, seen, known_apps, documents))
    kept = (str(file) for file in files)
    _documents = {path: documents[path] for path in kept if path in documents}  # files now only
    return Policy(tuple(seen.companies), seen.rules), errors


# The parsed files of the last load: a reload parses only the files whose content changed
# (a thousand files are read in milliseconds; parsing them takes most of a load's time).
_documents: DocumentCache = {}


def _load_file(
    file: Path, seen: _Seen, known_apps: Collection[str] | None, documents: DocumentCache
) -> list[ConfigError]:
    document = load_yaml_file(file, documents)
    reader = Reader(document)
    data = document.data
    if data is None and document.errors:
        pass  # the file could not be read or parsed; that is the one error to report
    elif data is None:
        reader.error((), "the file is empty; a policy file has company: or applications:")
    elif not isinstance(data, dict):
        reader.error((), "a policy file must be a mapping with company: or applications:")
    elif "company" in data and "applications" in data:
        reader.error((), "a policy file has company: or applications:, not both; split it in two")
    elif "company" in data:
        _company(reader, file, seen)
    elif "applications" in data:
        _applications(reader, file, seen, known_apps)
    else:
        reader.error(
            (),
            "this is neither a company file (with company:) nor an access file "
            "(with applications:)",
        )
    return sorted(reader.errors, key=lambda error: error.line)


def _company(reader: Reader, file: Path, seen: _Seen) -> None:
    before = len(reader.errors)
    reader.unknown_keys((), _COMPANY_KEYS)
    name = reader.string(("company",), required=True).strip()
    company_id = file.stem
    if company_id in seen.ids:
        reader.error(
            ("company",),
            f'the company id "{company_id}" (the file name) is taken by {seen.ids[company_id]}',
            at_key=True,
        )
    seen.ids.setdefault(company_id, str(file))

    members = read_members(reader, name, seen.claims)
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
    if len(reader.errors) == before:
        seen.companies.append(
            Company(
                id=company_id,
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
        )


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


def _applications(
    reader: Reader, file: Path, seen: _Seen, known_apps: Collection[str] | None
) -> None:
    before = len(reader.errors)
    reader.unknown_keys((), _ACCESS_KEYS)
    apps = reader.mapping(("applications",), required=True) or {}
    found: dict[str, tuple[AccessRule, ...]] = {}
    for app in apps:
        path: KeyPath = ("applications", app)
        if app in seen.apps:
            reader.error(
                path,
                f'application "{app}" already has rules in {seen.apps[app]}; keep them in one file',
                at_key=True,
            )
        elif known_apps is not None and app not in known_apps:
            known = ", ".join(sorted(known_apps)) or "none"
            reader.error(
                path, f'no application named "{app}" in the settings; known: {known}', at_key=True
            )
        seen.apps.setdefault(app, str(file))
        rules = (
            read_rule(reader, (*path, index), file) for index in range(len(reader.sequence(path)))
        )
        found[app] = tuple(rule for rule in rules if rule is not None)
    if len(reader.errors) == before:
        seen.rules.update(found)
