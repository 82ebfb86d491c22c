"""The company policy as immutable values: companies, access rules and the lookups made on them.

A little past 400 lines: the values and the lookups on them (company_for, access_for with its
readings and method overrides) are one frozen whole that every request reads; the matching of
patterns itself lives in globs.py."""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar
from urllib.parse import urlsplit

from gateway.i18n import N_
from gateway.paths import resolved
from gateway.policy.globs import PathIndex, PathPattern
from gateway.policy.globs import glob_to_regex as glob_to_regex  # the patterns' reference meaning
from gateway.policy.provider_mfa import ProviderMfa


class Access(StrEnum):
    BYPASS = "bypass"
    DENY = "deny"
    ONE_FACTOR = "one_factor"
    TWO_FACTOR = "two_factor"


class AccountType(StrEnum):
    PARTNER = "partner"
    CLIENT = "client"


METHODS = ("totp", "webauthn", "sms", "voice", "email", "recovery")
# each method as pages name it to people (policy files use the short names)
METHOD_NAMES = {
    "totp": N_("authenticator app"),
    "webauthn": N_("passkey"),
    "sms": N_("text message"),
    "voice": N_("phone call"),
    "email": N_("email"),
    "recovery": N_("recovery codes"),
}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def is_colour(text: str) -> bool:
    """True for "#rgb" and "#rrggbb"."""
    return _COLOUR.fullmatch(text) is not None


def is_logo(text: str) -> bool:
    """True for a path on the gateway ("/logo.png") or an https URL."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in text):
        return False
    if text.startswith("/"):
        return not text.startswith("//")
    parts = urlsplit(text)
    return parts.scheme == "https" and bool(parts.hostname)


@dataclass(frozen=True)
class Branding:
    name: str
    logo: str | None = None
    colour: str = "#1f4e8c"
    favicon: str | None = None  # the browser tab's icon, like the logo a path or an https URL

    def __post_init__(self) -> None:
        if not is_colour(self.colour):
            raise ValueError(f'the colour must be "#rgb" or "#rrggbb", not "{self.colour}"')
        for key, image in (("logo", self.logo), ("favicon", self.favicon)):
            if image is not None and not is_logo(image):
                raise ValueError(f'the {key} must be a path or an https URL, not "{image}"')


@dataclass(frozen=True)
class TrustedNetworks:
    networks: tuple[IPNetwork, ...] = ()
    reprompt_after: timedelta = timedelta(days=21)


@dataclass(frozen=True)
class SessionLimits:
    idle_timeout: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class AttemptLimits:
    """How many wrong answers (passwords at the gateway's or the application's login, second
    factors) are tolerated, and how fast (`attempts:` in a policy file).

    Failures count over a sliding window under three keys: the user from one address, the user
    from anywhere, the address for any user. After `free` failures of a user from one address,
    each further answer from there must wait, starting at `first_delay` and doubling up to
    `max_delay`; at a limit, nobody may try under that key until enough failures leave the
    window. One address alone never reaches the user-wide limit (per_user_and_address is
    smaller), so an attacker there cannot lock the user out of every other address.
    """

    window: timedelta = timedelta(minutes=15)
    per_user_and_address: int = 10
    per_user: int = 30
    per_address: int = 50
    # wrong second factors of one user in 24 hours, from anywhere (the password was right)
    per_user_per_day: int = 50
    free: int = 5  # one sign-in's worth of tries (sessions.MAX_FAILURES) before any delay
    first_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if not self.per_user_and_address < self.per_user <= 100:
            raise ValueError("per_user_and_address < per_user <= 100 must hold")
        if not self.per_user_and_address <= self.per_address <= 100:
            raise ValueError("per_user_and_address <= per_address <= 100 must hold")
        if self.first_delay > self.max_delay:
            raise ValueError("first_delay must not be longer than max_delay")
        if not 0 < self.window.total_seconds() <= 86400:
            raise ValueError("window must be longer than zero and at most a day")
        if not 0 < self.per_user_per_day <= 100:
            raise ValueError("per_user_per_day must be from 1 to 100")


@dataclass(frozen=True)
class CodeLimits:
    """Codes sent by text, call or email (methods.codes in a policy file)."""

    valid_for: timedelta = timedelta(minutes=10)
    tries: int = 5  # wrong entries of one code before it is void
    # between two sends of one method in one sign-in (factors.codes.send_keys)
    resend_after: timedelta = timedelta(seconds=30)
    # sends to one user by one method to one destination in any hour (and 3 times this to the
    # user in all)
    sends_per_hour: int = 5


# the bounds of a company's remember_browser
MIN_REMEMBER_BROWSER = timedelta(hours=1)
MAX_REMEMBER_BROWSER = timedelta(days=90)


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    source: str
    domains: tuple[str, ...]
    users: tuple[str, ...]
    account_type: AccountType
    admins: tuple[str, ...]
    # directory groups (portal mode's groups, from LDAP or the users file), lower case: a user
    # neither listed nor of a listed domain is a member through any of them
    groups: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("totp",)
    default_method: str = ""
    enforce_2fa: bool = False
    deferral: timedelta = timedelta(hours=48)
    trusted_networks: TrustedNetworks = TrustedNetworks()
    # "Remember this browser": how long a browser may skip the second factor after a real one
    # (None: not offered); never for client accounts, independent of trusted networks
    remember_browser: timedelta | None = None
    # an OpenID provider's own second factor counts as the second factor (None: the gateway
    # asks its own; gateway.policy.provider_mfa)
    provider_mfa: ProviderMfa | None = None
    branding: Branding = Branding("")  # an empty name means the company name
    language: str | None = None  # pages, emails and texts when the person's is not known
    session: SessionLimits = SessionLimits()
    codes: CodeLimits = CodeLimits()
    attempts: AttemptLimits = AttemptLimits()
    enforce_line: int = field(default=0, compare=False)  # where enforce_2fa is (or would be) said

    def __post_init__(self) -> None:
        unknown = [method for method in self.methods if method not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, not {self.methods}")
        if not self.default_method:
            object.__setattr__(self, "default_method", self.methods[0])
        elif self.default_method not in self.methods:
            raise ValueError(f'the default method "{self.default_method}" is not allowed')
        if not self.branding.name:
            object.__setattr__(self, "branding", replace(self.branding, name=self.name))
        if self.remember_browser is not None:
            if self.account_type is AccountType.CLIENT:
                raise ValueError("remember_browser is never for client accounts")
            if not MIN_REMEMBER_BROWSER <= self.remember_browser <= MAX_REMEMBER_BROWSER:
                raise ValueError("remember_browser must be from 1 hour to 90 days")

    def is_member(self, user: str, groups: Iterable[str] = ()) -> bool:
        """True when `user` is listed explicitly, has an address in one of the domains, or is
        in one of the groups."""
        user = user.lower()
        return (
            user in self.users
            or ("@" in user and user.rpartition("@")[2] in self.domains)
            or any(group.lower() in self.groups for group in groups)
        )


# the shortest step-up bound: below it a person could not finish the challenge and come back
MIN_REAUTHENTICATE_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class AccessRule:
    paths: tuple[str, ...]
    access: Access
    methods: tuple[str, ...] | None = None
    source: str = ""
    line: int = 0
    # intercept mode: the client's own credentials (Authorization, API tokens) reach the
    # application here without a verified gateway session
    pass_credentials: bool = False
    # step-up: a verified session whose second factor (a real one, not a trusted network or a
    # deferral) is older than this is asked for it again here (two_factor rules only)
    reauthenticate_after: timedelta | None = None
    patterns: tuple[PathPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.paths or not all(path.startswith("/") for path in self.paths):
            raise ValueError(f"every path pattern must start with /, not {self.paths}")
        if self.reauthenticate_after is not None:
            if self.access is not Access.TWO_FACTOR:
                raise ValueError("reauthenticate_after is only for two_factor rules")
            if self.reauthenticate_after < MIN_REAUTHENTICATE_AFTER:
                raise ValueError("reauthenticate_after must be at least 1 minute")
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))
        patterns = tuple(PathPattern(path) for path in dict.fromkeys(self.paths))
        object.__setattr__(self, "patterns", patterns)

    def matches(self, method: str, path: str) -> bool:
        """`path` is the normalised request path, without the query string."""
        method = method.upper()
        if method == "HEAD":  # a GET without its body: a rule for GET covers it
            method = "GET" if self.methods is not None and "HEAD" not in self.methods else method
        if self.methods is not None and method not in self.methods:
            return False
        return any(pattern.matches(path) for pattern in self.patterns)


@dataclass(frozen=True)
class Policy:
    """`reuse`: an earlier Policy whose compiled rules are taken over for each application whose
    rules tuple is the very same object (a reload that changed one access file compiles that
    file's applications only)."""

    companies: tuple[Company, ...] = ()
    access_rules: Mapping[str, tuple[AccessRule, ...]] = field(default_factory=dict)
    reuse: InitVar[Policy | None] = None
    EMPTY: ClassVar[Policy]
    _by_user: dict[str, Company] = field(init=False, repr=False, compare=False)
    _by_domain: dict[str, Company] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, Company] = field(init=False, repr=False, compare=False)
    _by_group: dict[str, Company] = field(init=False, repr=False, compare=False)
    # per application, its rules compiled for `access_for` (see RuleIndex)
    _indexes: dict[str, RuleIndex] = field(init=False, repr=False, compare=False)

    def __post_init__(self, reuse: Policy | None) -> None:
        by_user: dict[str, Company] = {}
        by_domain: dict[str, Company] = {}
        by_group: dict[str, Company] = {}
        for company in self.companies:
            for user in company.users:
                by_user.setdefault(user.lower(), company)
            for domain in company.domains:
                by_domain.setdefault(domain.lower(), company)
            for group in company.groups:
                by_group.setdefault(group.lower(), company)
        object.__setattr__(self, "_by_user", by_user)
        object.__setattr__(self, "_by_domain", by_domain)
        object.__setattr__(self, "_by_group", by_group)
        object.__setattr__(self, "_by_id", {company.id: company for company in self.companies})
        object.__setattr__(self, "access_rules", MappingProxyType(dict(self.access_rules)))
        earlier = reuse._indexes if reuse is not None else {}
        indexes = {
            app: index if (index := earlier.get(app)) and index.rules is rules else RuleIndex(rules)
            for app, rules in self.access_rules.items()
            if rules
        }
        object.__setattr__(self, "_indexes", indexes)

    def company_for(self, user: str, groups: Iterable[str] = ()) -> Company | None:
        """The company `user` belongs to: an explicit entry first, then the address's domain,
        then the first of the user's directory `groups` a company lists."""
        user = user.lower()
        company = self._by_user.get(user)
        if company is None and "@" in user:
            company = self._by_domain.get(user.rpartition("@")[2])
        for group in groups if company is None and self._by_group else ():
            company = company or self._by_group.get(group.lower())
        return company

    def company_by_id(self, company_id: str) -> Company | None:
        return self._by_id.get(company_id)

    def access_for(
        self, app: str, method: str, path: str, overrides: tuple[str, ...] = ()
    ) -> tuple[Access, AccessRule | None]:
        """The first rule of `app` that matches decides; with none, two factors are needed.

        Application servers read some paths loosely (see `readings`): the rule is decided for
        each reading and the strictest wins, so "/INTERNAL/x" or "/internal;a/x" meets the deny
        rule of "/internal/**", and "/STATIC/x" gets no bypass unless "/STATIC/x" has one too.
        The same for the methods an application may take the request for (`overrides`: what
        X-HTTP-Method-Override and its kin say).
        """
        index = self._indexes.get(app)
        if index is None:
            return Access.TWO_FACTOR, None
        decided = index.first_match(method, path)
        for candidate in dict.fromkeys((method, *overrides)):
            for reading in readings(path):
                if candidate == method and reading == path:
                    continue  # decided above
                other = index.first_match(candidate, reading)
                if other[1] is not decided[1] and _asks_more(other, decided):
                    decided = other
        return decided

    def body_may_tighten(
        self, app: str, method: str, path: str, access: Access, rule: AccessRule | None = None
    ) -> bool:
        """Whether a method override the request body may carry (`_method` in a form or JSON
        body, read by Rails, Laravel and Symfony) could make `access` (decided by `rule`)
        stricter, or add a step-up to it: only then is the body worth reading before the
        request is decided."""
        if method.upper() in ("GET", "HEAD"):
            return False
        widest = self.access_for(app, method, path, self.any_method(app))
        return _asks_more(widest, (access, rule))

    def any_method(self, app: str) -> tuple[str, ...]:
        """Every method a request to `app` may be taken for, as far as its rules can tell
        apart: each method some rule is scoped to, and OTHER_METHOD for all the rest (it meets
        only the rules scoped to no method)."""
        index = self._indexes.get(app)
        return (*index.methods, OTHER_METHOD) if index is not None else (OTHER_METHOD,)


# a method no rule can name: what a `_method` naming any method no rule is scoped to is decided as
OTHER_METHOD = "\x00OTHER"
STRICTNESS = {Access.BYPASS: 0, Access.ONE_FACTOR: 1, Access.TWO_FACTOR: 2, Access.DENY: 3}


def stricter(one: Access, other: Access) -> bool:
    """`one` asks more of a request than `other`."""
    return STRICTNESS[one] > STRICTNESS[other]


def _asks_more(
    one: tuple[Access, AccessRule | None], other: tuple[Access, AccessRule | None]
) -> bool:
    """Whether decision `one` asks more than `other`: by access first; between two_factor rules,
    a step-up asks more than none, and a shorter one more than a longer one ("/ADMIN/x" meets
    the step-up of "/admin/**" on an application that reads paths in any case)."""
    if one[0] is not other[0]:
        return STRICTNESS[one[0]] > STRICTNESS[other[0]]
    return _step_up_seconds(one[1]) < _step_up_seconds(other[1])


def _step_up_seconds(rule: AccessRule | None) -> float:
    bound = rule.reauthenticate_after if rule is not None else None
    return math.inf if bound is None else bound.total_seconds()


def _first_match(
    rules: tuple[AccessRule, ...], method: str, path: str
) -> tuple[Access, AccessRule | None]:
    """The plain meaning of an application's rules: the first, in order, that matches decides;
    with none, two factors are needed. RuleIndex answers the same, faster."""
    for rule in rules:
        if rule.matches(method, path):
            return rule.access, rule
    return Access.TWO_FACTOR, None


class RuleIndex:
    """An application's access rules compiled for lookups whose cost does not grow with their
    number (gateway.policy.globs.PathIndex): `first_match` answers exactly what `_first_match`
    answers for the same rules, method and path. `methods`: each method some rule is scoped
    to, in the order the rules name them."""

    __slots__ = ("_index", "methods", "rules")

    def __init__(self, rules: tuple[AccessRule, ...]) -> None:
        self.rules = rules  # the very tuple compiled (Policy's `reuse` compares identity)
        self._index = PathIndex((rule.patterns, rule.methods, rule) for rule in rules)
        self.methods = tuple(dict.fromkeys(m for rule in rules for m in rule.methods or ()))

    def first_match(self, method: str, path: str) -> tuple[Access, AccessRule | None]:
        rule = self._index.first(method.upper(), path)
        return (Access.TWO_FACTOR, None) if rule is None else (rule.access, rule)


def readings(path: str) -> list[str]:
    """`path` (normalised) and the other paths an application server may route it to: without
    its trailing slash (Express, Rails, Spring up to 5: "/admin/users/" is "/admin/users"),
    with ";parameters" dropped from each segment (Tomcat, Jetty, Spring), with trailing dots
    and spaces dropped from each segment (Windows and IIS: "/internal./x" is "/internal/x"),
    folded by NFKC, in lower case (IIS, and many frameworks), and combinations of these. The
    path itself comes first."""
    found = [path]
    if len(path) > 1 and path.endswith("/"):
        found.append(path.rstrip("/") or "/")
    if ";" in path:
        found += [_without_parameters(reading) for reading in found]
    if "./" in path or " /" in path or path.endswith((".", " ")):
        found += [_trimmed(reading) for reading in found]
    if not path.isascii():
        found += [unicodedata.normalize("NFKC", reading) for reading in found]
    found += [reading.lower() for reading in found]
    return list(dict.fromkeys(found))


def _trimmed(path: str) -> str:
    """Each segment without trailing dots and spaces; segments left empty go."""
    segments = (part.rstrip(". ") for part in path.split("/")[1:])
    return resolved(segments, trailing_slash=path.endswith("/"))


def _without_parameters(path: str) -> str:
    segments = (part.split(";", 1)[0] for part in path.split("/")[1:])
    return resolved(segments, trailing_slash=path.endswith("/"))


Policy.EMPTY = Policy()
