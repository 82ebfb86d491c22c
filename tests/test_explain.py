"""The pure explanations behind `gateway policy explain|check` and `gateway companies status`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest

from gateway.companies_status import status_table
from gateway.enforcement import conflicts as ratchet_conflicts
from gateway.explain import (
    Explanation,
    Request,
    StoreFacts,
    explain,
)
from gateway.policy import Policy, load_policy_dir
from gateway.settings import Application, Intercept

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
SINCE = datetime(2025, 1, 15, 9, 30, tzinfo=UTC).timestamp()

FILES = {
    "acme.yaml": """\
        company: Acme Corporation
        members:
          domains: [acme.example]
        enforce_2fa: true
        trusted_networks:
          networks: [10.0.0.0/8, "2001:db8:a::/48"]
          reprompt_after: 21d
        """,
    "globex.yaml": """\
        company: Globex
        members:
          domains: [globex.example]
        enforce_2fa: false
        deferral: 24h
        trusted_networks:
          networks: [192.0.2.0/24]
          reprompt_after: 7d
        """,
    "initech.yaml": """\
        company: Initech Clients
        members:
          domains: [initech.example]
        account_type: client
        trusted_networks:
          networks: [198.51.100.0/24]
        """,
    "rules.yaml": """\
        applications:
          legacy:
            - paths: ["/public/**", "/favicon.ico"]
              access: bypass
            - paths: ["/admin/**"]
              access: deny
            - paths: ["/status"]
              methods: [GET]
              access: one_factor
          wiki: []
        """,
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(dedent(text), encoding="utf-8")
    return tmp_path


@pytest.fixture
def policy(policy_dir: Path) -> Policy:
    return load_policy_dir(policy_dir)


def _app(name: str, *hosts: str) -> Application:
    return Application(name, "http://127.0.0.1:9", hosts, "intercept", Intercept(("sid",)))


APPS = (_app("legacy", "legacy.example"), _app("wiki", "wiki.example", "*"))


def _explain(
    policy: Policy,
    url: str,
    *,
    user: str = "alice@acme.example",
    ip: str = "203.0.113.9",
    method: str = "GET",
    facts: StoreFacts | None = None,
    app: str | None = None,
    apps: tuple[Application, ...] | None = APPS,
) -> Explanation:
    request = Request(user=user, ip=ip, url=url, method=method)
    return explain(policy, request, applications=apps, app_name=app, facts=facts, now=NOW)


def _line(explanation: Explanation, label: str) -> str:
    found = [line for line in explanation.lines if line.startswith(f"{label}:")]
    assert len(found) == 1, explanation.lines
    return found[0]


def _decisions(explanation: Explanation) -> list[str]:
    start = explanation.lines.index(_line(explanation, "decision"))
    return [explanation.lines[start], *explanation.lines[start + 1 :]]


# -- access rules ------------------------------------------------------------------------------


def test_bypass_rule_names_its_file_and_line(policy: Policy, policy_dir: Path) -> None:
    result = _explain(policy, "https://legacy.example/public/logo.png")
    assert result.ok
    rule = _line(result, "access rule")
    assert f"{policy_dir / 'rules.yaml'}:3:" in rule
    assert "/public/**, /favicon.ico" in rule and rule.endswith("-> bypass")
    assert _decisions(result) == [
        "decision:    forward_anonymous: the access rule bypasses the gateway"
    ]


def test_deny_rule(policy: Policy, policy_dir: Path) -> None:
    result = _explain(policy, "https://legacy.example/admin/users")
    assert f"{policy_dir / 'rules.yaml'}:5:" in _line(result, "access rule")
    assert "-> deny" in _line(result, "access rule")
    assert _decisions(result)[0].endswith("deny: the access rule denies this path")


def test_one_factor_rule_with_its_methods(policy: Policy, policy_dir: Path) -> None:
    result = _explain(policy, "https://legacy.example/status")
    rule = _line(result, "access rule")
    assert f"{policy_dir / 'rules.yaml'}:7:" in rule and "for GET -> one_factor" in rule
    assert _decisions(result)[0].endswith("forward: the access rule asks for one factor only")
    # The rule only covers GET: a POST falls through to the default.
    posted = _explain(policy, "https://legacy.example/status", method="post")
    assert "no rule matched" in _line(posted, "access rule")
    assert _line(posted, "request").startswith("request:     POST ")


def test_no_rule_means_two_factor_by_default(policy: Policy) -> None:
    result = _explain(policy, "https://legacy.example/reports")
    assert _line(result, "access rule") == (
        "access rule: no rule matched (none of legacy's 3 rules): two_factor by default"
    )
    assert _line(result, "decision") == "decision:    after a correct password:"
    empty = _explain(policy, "https://wiki.example/page")
    assert "(wiki has no access rules): two_factor by default" in _line(empty, "access rule")


def test_dot_segments_are_resolved_before_matching(policy: Policy) -> None:
    """/public/../admin is /admin: the deny rule matches, not the public bypass."""
    result = _explain(policy, "https://legacy.example/public/../admin/x?y=1")
    assert _line(result, "path").startswith("path:        /public/../admin/x -> /admin/x ")
    assert "/admin/** -> deny" in _line(result, "access rule")
    assert "deny" in _line(result, "decision")


@pytest.mark.parametrize("path", ["/public%2f..%2fadmin", "/a%2Fb", "/a%5cb", "/a%00"])
def test_encoded_separators_are_refused(policy: Policy, path: str) -> None:
    result = _explain(policy, f"https://legacy.example{path}")
    assert not result.ok
    assert "is refused" in _line(result, "path") and "400" in _line(result, "path")
    assert not any(line.startswith(("access rule:", "decision:")) for line in result.lines)


# -- applications ------------------------------------------------------------------------------


def test_application_by_host_then_catch_all(policy: Policy) -> None:
    assert "legacy (by the host LEGACY.example.)" in _line(
        _explain(policy, "https://LEGACY.example./x"), "application"
    )
    assert "wiki (by the catch-all host *)" in _line(
        _explain(policy, "https://elsewhere.example/x"), "application"
    )


def test_no_application_for_the_host(policy: Policy) -> None:
    result = _explain(policy, "https://other.example/x", apps=(APPS[0],))
    assert not result.ok
    assert "none answers for the host other.example" in _line(result, "application")


def test_without_settings_the_application_is_named(policy: Policy) -> None:
    named = _explain(policy, "/admin", app="legacy", apps=None)
    assert named.ok and "legacy (given with --app" in _line(named, "application")
    assert "-> deny" in _line(named, "access rule")
    unnamed = _explain(policy, "/admin", apps=None)
    assert not unnamed.ok and "--app" in _line(unnamed, "application")
    unknown = _explain(policy, "/admin", app="nope")
    assert not unknown.ok and 'no application named "nope"' in _line(unknown, "application")


# -- companies, enforcement, trusted networks --------------------------------------------------


def test_member_of_a_company(policy: Policy, policy_dir: Path) -> None:
    result = _explain(policy, "https://legacy.example/x", user="Bob@Globex.Example")
    company = _line(result, "company")
    assert f"globex (Globex, {policy_dir / 'globex.yaml'}), partner account" in company
    enforcement = result.lines[result.lines.index(_line(result, "enforcement")) :][:2]
    assert f"enforce_2fa: false ({policy_dir / 'globex.yaml'}:4)" in enforcement[0]
    assert "store not consulted" in enforcement[0]
    assert "may be deferred for 24h" in enforcement[1]


def test_member_of_no_company(policy: Policy) -> None:
    result = _explain(policy, "https://legacy.example/x", user="eve@nowhere.example", ip="10.1.1.1")
    assert "member of no company: 2FA always required" in _line(result, "company")
    assert "no trusted networks" in _line(result, "network")
    decisions = _decisions(result)
    assert decisions[1:] == [
        "  enrolled, no trusted-network cookie: challenge: a second factor is required",
        "  not enrolled: enrol: 2FA is enforced for this user and none is enrolled",
    ]


def test_inside_a_trusted_network_adds_the_cookie_case(policy: Policy) -> None:
    result = _explain(policy, "https://legacy.example/x", ip="10.20.30.40")
    assert _line(result, "network") == (
        "network:     10.20.30.40 is in the trusted network 10.0.0.0/8 of acme (reprompt_after 21d)"
    )
    assert _decisions(result)[1:] == [
        "  enrolled, no trusted-network cookie: challenge: a second factor is required",
        "  enrolled, a valid trusted-network cookie: skip_trusted: a valid trusted-network "
        "cookie, from inside that network",
        "  not enrolled: enrol: 2FA is enforced for this user and none is enrolled",
    ]


@pytest.mark.parametrize("ip", ["2001:db8:a::1", "[2001:db8:a:ffff::9]:443"])
def test_ipv6_inside_a_trusted_network(policy: Policy, ip: str) -> None:
    result = _explain(policy, "https://legacy.example/x", ip=ip)
    assert "is in the trusted network 2001:db8:a::/48 of acme" in _line(result, "network")
    assert any("skip_trusted" in line for line in _decisions(result))


@pytest.mark.parametrize("ip", ["11.0.0.1", "2001:db8:b::1", "::ffff:192.0.2.1"])
def test_outside_the_trusted_networks(policy: Policy, ip: str) -> None:
    result = _explain(policy, "https://legacy.example/x", ip=ip)
    network = _line(result, "network")
    assert "is not in any trusted network of acme (10.0.0.0/8, 2001:db8:a::/48)" in network
    assert not any("a valid trusted-network cookie" in line for line in _decisions(result))


def test_an_unparsable_address_is_in_no_trusted_network(policy: Policy) -> None:
    result = _explain(policy, "https://legacy.example/x", ip="10.0.0.300")
    assert _line(result, "network") == (
        'network:     "10.0.0.300" is not an IP address: not in any trusted network'
    )
    assert not any("skip_trusted" in line for line in _decisions(result))


def test_client_accounts_never_use_trusted_networks(policy: Policy) -> None:
    result = _explain(
        policy,
        "https://legacy.example/x",
        user="carol@initech.example",
        ip="198.51.100.7",
        facts=StoreFacts(methods=("totp",)),
    )
    assert "client account" in _line(result, "company")
    assert _line(result, "network") == (
        "network:     198.51.100.7 is in 198.51.100.0/24, but client accounts never use "
        "trusted networks"
    )
    assert _decisions(result)[1:] == [
        "  no trusted-network cookie: challenge: a second factor is required"
    ]


# -- what the store adds -----------------------------------------------------------------------


def test_store_facts_enrolled(policy: Policy) -> None:
    facts = StoreFacts(enforced_since=SINCE, methods=("totp",))
    result = _explain(policy, "https://legacy.example/x", ip="10.0.0.1", facts=facts)
    assert not any(line.startswith("store:") for line in result.lines)
    assert "store: enforced since 2025-01-15 09:30 UTC" in _line(result, "enforcement")
    assert _line(result, "enrolment") == "enrolment:   enrolled: totp"
    assert _decisions(result)[1:] == [
        "  no trusted-network cookie: challenge: a second factor is required",
        "  a valid trusted-network cookie: skip_trusted: a valid trusted-network cookie, "
        "from inside that network",
    ]


def test_the_ratchet_overrides_the_file(policy: Policy) -> None:
    """Globex says false, but the store has enforced it: no deferral, enrolment required."""
    facts = StoreFacts(enforced_since=SINCE, deferred_until=NOW + 3600)
    result = _explain(policy, "https://legacy.example/x", user="bob@globex.example", facts=facts)
    enforcement = result.lines[result.lines.index(_line(result, "enforcement")) :][:2]
    assert "the ratchet keeps it on over the file" in enforcement[0]
    assert "-> enforced" in enforcement[1]
    assert "is ignored: enforced" in _line(result, "enrolment")
    assert _decisions(result)[1:] == [
        "  none enrolled: enrol: 2FA is enforced for this user and none is enrolled"
    ]


def test_a_running_deferral(policy: Policy) -> None:
    facts = StoreFacts(deferred_until=NOW + 3600)
    result = _explain(policy, "https://legacy.example/x", user="bob@globex.example", facts=facts)
    assert "deferred until 2025-03-01 13:00 UTC (still running)" in _line(result, "enrolment")
    assert _decisions(result)[1:] == [
        "  none enrolled, enrolment deferred: skip_deferred: enrolment deferred and not yet due"
    ]
    expired = StoreFacts(deferred_until=NOW - 1)
    late = _explain(policy, "https://legacy.example/x", user="bob@globex.example", facts=expired)
    assert "(expired)" in _line(late, "enrolment")
    assert "enrol: a second factor is required" in _decisions(late)[1]


def test_without_the_store_deferral_is_a_case(policy: Policy) -> None:
    result = _explain(policy, "https://legacy.example/x", user="bob@globex.example")
    assert _line(result, "store").startswith("store:       not consulted")
    assert _decisions(result)[-2:] == [
        "  not enrolled, no deferral: enrol: a second factor is required and none is enrolled",
        "  not enrolled, a deferral still running: skip_deferred: enrolment deferred and not "
        "yet due",
    ]


# -- the ratchet check and the status table ----------------------------------------------------


def test_ratchet_conflicts_only_for_enforced_companies_turned_off(
    policy: Policy, policy_dir: Path
) -> None:
    """A file turning an enforced company off is refused at its enforce_2fa line; an enforced
    company whose file is gone (renamed?) is refused at the directory."""
    enforced = {"globex": SINCE, "acme": SINCE, "gone": SINCE}
    errors = ratchet_conflicts(policy, enforced, {}, policy_dir)
    assert [(error.file, error.line) for error in errors] == [
        (str(policy_dir / "globex.yaml"), 4),
        (str(policy_dir), 0),
    ]
    assert "since 2025-01-15 09:30 UTC" in errors[0].message
    assert "gateway companies lift-enforcement globex" in errors[0].message
    assert 'company "gone"' in errors[1].message and "renamed or removed" in errors[1].message
    assert ratchet_conflicts(policy, {}, {}, policy_dir) == []


def test_enforced_members_cannot_be_moved_out(policy: Policy, policy_dir: Path) -> None:
    """A member of an enforced company listed in (or whose domain moved to) a file that does
    not enforce is refused at that file's enforce_2fa line."""
    members = {"domain:globex.example": ("acme", SINCE), "domain:acme.example": ("acme", SINCE)}
    errors = ratchet_conflicts(policy, {"acme": SINCE}, members, policy_dir)
    assert [(error.file, error.line) for error in errors] == [(str(policy_dir / "globex.yaml"), 4)]
    assert '"@globex.example" belongs to a company ("acme")' in errors[0].message


def test_status_table(policy: Policy) -> None:
    rows = status_table(policy, {"globex": SINCE, "gone": SINCE})
    assert rows == [
        "ID       NAME              TYPE     IN FILE  IN STORE SINCE (UTC)  EFFECTIVE    NETWORKS"
        "  DEFERRAL",
        "acme     Acme Corporation  partner  true     -                     yes (file)   2"
        "         - (enforced)",
        "globex   Globex            partner  false    2025-01-15 09:30      yes (store)  1"
        "         - (enforced)",
        "initech  Initech Clients   client   false    -                     no           1"
        "         48h",
        "gone     (no policy file)  -        -        2025-01-15 09:30      -            -"
        "         -",
    ]
