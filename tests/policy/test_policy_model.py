"""The policy model: rule matching, the company of a user, and the access decision per path."""

from datetime import timedelta

import pytest

from gateway.policy import METHODS, Access, AccessRule, AccountType, Company, Policy
from gateway.policy.model import Branding, glob_to_regex


def _company(
    company_id: str, domains: tuple[str, ...] = (), users: tuple[str, ...] = ()
) -> Company:
    return Company(
        id=company_id,
        name=company_id.title(),
        source=f"policies/{company_id}.yaml",
        domains=domains,
        users=users,
        account_type=AccountType.PARTNER,
        admins=(),
    )


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/favicon.ico", "/favicon.ico", True),
        ("/favicon.ico", "/favicon.icox", False),
        ("/favicon.ico", "/favicon_ico", False),  # "." is literal
        ("/public/**", "/public", True),
        ("/public/**", "/public/", True),
        ("/public/**", "/public/a/b", True),
        ("/public/**", "/publicity", False),
        ("/public/*", "/public/a", True),
        ("/public/*", "/public/", True),
        ("/public/*", "/public/a/b", False),
        ("/public/*", "/public", False),
        ("/*.css", "/site.css", True),
        ("/*.css", "/a/site.css", False),
        ("/**.css", "/a/site.css", True),
        ("/a/**/b", "/a/b", True),
        ("/a/**/b", "/a/x/y/b", True),
        ("/a/**/b", "/a/xb", False),
        ("/api/*/items", "/api/v1/items", True),
        ("/api/*/items", "/api/v1/v2/items", False),
        ("/**", "/", True),
        ("/**", "/anything/at/all", True),
        ("/admin/**", "/Admin/x", False),  # case-sensitive, like the paths themselves
        ("/x(y)+[z]", "/x(y)+[z]", True),  # regex characters are literal
        ("/x(y)+[z]", "/xyyz", False),
    ],
)
def test_glob_patterns(pattern: str, path: str, matches: bool) -> None:
    """One "*" stays in a segment, "**" crosses them, a trailing "/**" also matches the bare dir."""
    assert AccessRule((pattern,), Access.BYPASS).matches("GET", path) is matches


def test_glob_translation_is_anchored_by_fullmatch() -> None:
    """The translation is a plain regex fragment."""
    assert glob_to_regex("/a/*") == "/a/[^/]*"


def test_methods_restrict_a_rule_case_insensitively() -> None:
    """Methods are kept upper-case; None means any method."""
    rule = AccessRule(("/admin/**",), Access.DENY, ("post", "PUT"))
    assert rule.methods == ("POST", "PUT")
    assert rule.matches("POST", "/admin/x")
    assert rule.matches("post", "/admin/x")
    assert not rule.matches("GET", "/admin/x")
    assert AccessRule(("/admin/**",), Access.DENY, None).matches("PATCH", "/admin")


def test_rule_with_a_pattern_not_starting_with_a_slash_is_refused() -> None:
    """The model refuses what the loader would report."""
    with pytest.raises(ValueError, match="start with /"):
        AccessRule(("admin",), Access.DENY)


RULES = (
    AccessRule(("/static/**", "/favicon.ico"), Access.BYPASS, None, "apps.yaml", 3),
    AccessRule(("/admin/**",), Access.DENY, ("POST",), "apps.yaml", 5),
    AccessRule(("/admin/**",), Access.TWO_FACTOR, None, "apps.yaml", 8),
    AccessRule(("/**",), Access.ONE_FACTOR, ("GET",), "apps.yaml", 10),
)


@pytest.mark.parametrize(
    ("app", "method", "path", "access", "rule_line"),
    [
        ("wiki", "GET", "/static/app.js", Access.BYPASS, 3),
        ("wiki", "POST", "/static", Access.BYPASS, 3),
        ("wiki", "GET", "/favicon.ico", Access.BYPASS, 3),
        ("wiki", "POST", "/admin/users", Access.DENY, 5),
        ("wiki", "GET", "/admin/users", Access.TWO_FACTOR, 8),  # first match wins over /**
        ("wiki", "GET", "/reports", Access.ONE_FACTOR, 10),
        ("wiki", "POST", "/reports", Access.TWO_FACTOR, None),  # no rule: two factors
        ("other", "GET", "/static/app.js", Access.TWO_FACTOR, None),  # rules are per application
    ],
)
def test_access_for_first_match_wins_else_two_factor(
    app: str, method: str, path: str, access: Access, rule_line: int | None
) -> None:
    """Rules are tried in file order; with no match the answer is two factors and no rule."""
    policy = Policy(companies=(), access_rules={"wiki": RULES})
    found, rule = policy.access_for(app, method, path)
    assert found is access
    assert (rule.line if rule else None) == rule_line


def test_company_for_explicit_user_beats_domain_and_ignores_case() -> None:
    """An explicit member wins over a domain match; lookups ignore case."""
    acme = _company("acme", domains=("acme.example",))
    globex = _company("globex", domains=("globex.example",), users=("carol@acme.example", "dave"))
    policy = Policy(companies=(acme, globex), access_rules={})
    assert policy.company_for("bob@acme.example") is acme
    assert policy.company_for("BOB@ACME.Example") is acme
    assert policy.company_for("Carol@Acme.Example") is globex
    assert policy.company_for("DAVE") is globex
    assert policy.company_for("eve@initech.example") is None
    assert policy.company_for("acme.example") is None  # a bare name is not a domain match
    assert policy.company_for("x@evil@acme.example") is acme  # the part after the last "@"
    assert policy.company_for("") is None
    assert policy.company_by_id("globex") is globex


def test_empty_policy_has_no_companies_and_needs_two_factors() -> None:
    """Policy.EMPTY is the safe starting point."""
    assert Policy.EMPTY.companies == ()
    assert Policy.EMPTY.company_for("a@b.example") is None
    assert Policy.EMPTY.access_for("any", "GET", "/") == (Access.TWO_FACTOR, None)


def test_company_defaults_follow_the_policy_file_defaults() -> None:
    """Defaults: TOTP only, default method first, not enforced, 48h deferral, branded by name."""
    company = _company("acme", domains=("acme.example",))
    assert company.methods == ("totp",)
    assert company.default_method == "totp"
    assert company.enforce_2fa is False
    assert company.deferral == timedelta(hours=48)
    assert company.trusted_networks.reprompt_after == timedelta(days=21)
    assert company.session.idle_timeout == timedelta(minutes=30)
    assert company.session.lifetime == timedelta(hours=12)
    assert company.branding == Branding("Acme")
    assert company.is_member("x@ACME.example")
    assert not company.is_member("x@globex.example")


def test_company_refuses_inconsistent_methods_and_branding() -> None:
    """Bad values fail at construction, as the loader never builds them."""
    base = _company("acme", domains=("acme.example",))
    fields = {key: getattr(base, key) for key in ("id", "name", "source", "domains", "users")}
    common = {**fields, "account_type": AccountType.CLIENT, "admins": ()}
    with pytest.raises(ValueError, match="default method"):
        Company(**common, methods=("totp",), default_method="sms")
    with pytest.raises(ValueError, match="methods"):
        Company(**common, methods=("pigeon",))
    with pytest.raises(ValueError, match="colour"):
        Branding("Acme", colour="red")
    with pytest.raises(ValueError, match="logo"):
        Branding("Acme", logo="javascript:alert(1)")
    assert set(METHODS) >= {"totp", "webauthn", "recovery"}


@pytest.mark.parametrize("path", ["/internal./x", "/internal /x", "/internal.. ./x", "/internal."])
def test_a_deny_rule_meets_segments_with_trailing_dots_and_spaces(path: str) -> None:
    """Windows and IIS drop trailing dots and spaces from each segment, so "/internal./x" is
    "/internal/x" there: the deny rule of "/internal/**" decides (and so does "/internal")."""
    rules = (
        AccessRule(("/internal", "/internal/**"), Access.DENY),
        AccessRule(("/**",), Access.BYPASS),
    )
    policy = Policy(companies=(), access_rules={"app": rules})
    assert policy.access_for("app", "GET", path)[0] is Access.DENY
    assert policy.access_for("app", "GET", "/internals./x")[0] is Access.BYPASS
