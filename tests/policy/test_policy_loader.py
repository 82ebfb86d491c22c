"""Loading a policy directory: a good one loads, a broken one reports every error at once."""

import ipaddress
from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest

from gateway.policy import Access, AccountType, check_policy_dir, load_policy_dir
from gateway.yamlsource import ConfigError, ConfigInvalid


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(dedent(text), encoding="utf-8")
    return directory


def _errors(directory: Path, known_apps: list[str] | None = None) -> list[tuple[str, int, str]]:
    return [
        (Path(error.file).name, error.line, error.message)
        for error in check_policy_dir(directory, known_apps)
    ]


GOOD = {
    "acme.yaml": """\
        company: Acme Corporation
        members:
          domains: [Acme.Example]
          users: [contractor@elsewhere.example]
        account_type: partner
        admins: [alice@acme.example]
        methods:
          allowed: [totp, webauthn, totp]
          default: webauthn
        enforce_2fa: true
        deferral: 24h
        trusted_networks:
          networks: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]
          reprompt_after: 2w
        branding: {name: Acme, logo: /logo.png, colour: "#aa3300"}
        session: {idle_timeout: 15m, lifetime: 8h}
        """,
    "globex.yml": """\
        company: Globex
        members: {domains: [globex.example]}
        account_type: client
        """,
    "rules.yaml": """\
        applications:
          wiki:
            - paths: ["/static/**", "/favicon.ico"]
              access: bypass
            - paths: ["/admin/**"]
              methods: [post]
              access: deny
          crm: []
        """,
    ".hidden.yaml": "not: a policy",
    "_draft.yaml": "not: a policy",
    "notes.txt": "not yaml at all: [",
}


def test_a_good_directory_loads_every_setting(tmp_path: Path) -> None:
    """Values, defaults, lower-casing, order and rule lines all come through."""
    policy = load_policy_dir(_write(tmp_path, GOOD), known_apps=["wiki", "crm"])
    acme, globex = policy.companies
    assert acme.id == "acme"
    assert acme.name == "Acme Corporation"
    assert acme.source == str(tmp_path / "acme.yaml")
    assert acme.domains == ("acme.example",)
    assert acme.users == ("contractor@elsewhere.example",)
    assert acme.admins == ("alice@acme.example",)
    assert acme.methods == ("totp", "webauthn")
    assert acme.default_method == "webauthn"
    assert acme.enforce_2fa is True
    assert acme.deferral == timedelta(hours=24)
    assert acme.trusted_networks.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert acme.trusted_networks.reprompt_after == timedelta(weeks=2)
    assert (acme.branding.name, acme.branding.logo, acme.branding.colour) == (
        "Acme",
        "/logo.png",
        "#aa3300",
    )
    assert acme.session.idle_timeout == timedelta(minutes=15)
    assert globex.account_type is AccountType.CLIENT
    assert globex.methods == ("totp",)
    assert globex.default_method == "totp"
    assert globex.enforce_2fa is False
    assert globex.deferral == timedelta(hours=48)
    assert globex.branding.name == "Globex"
    assert policy.company_for("contractor@ELSEWHERE.example") is acme
    wiki = policy.access_rules["wiki"]
    assert [(rule.access, rule.line, rule.methods) for rule in wiki] == [
        (Access.BYPASS, 3, None),
        (Access.DENY, 5, ("POST",)),
    ]
    assert policy.access_rules["crm"] == ()
    assert policy.access_for("wiki", "POST", "/admin") == (Access.DENY, wiki[1])


BROKEN = {
    "a_acme.yaml": """\
        company: Acme
        members:
          domains: [acme.example]
        enforce2fa: true
        methods:
          allowed: [totp, pigeon]
          default: sms
        deferral: 2 days
        trusted_networks:
          networks: [10.0.0.0/8, 10.0.0.1/8, 10.0.0.300/8]
        enforce_2fa: true
        enforce_2fa: false
        """,
    "b_beta.yaml": """\
        company:
        members:
          domains:
            - beta.example
            - acme.example
        admins: [boss@else.example]
        account_type: 3
        enforce_2fa: yes
        """,
    "c_rules.yaml": """\
        applications:
          wiki:
            - paths: ["/static/**", "static"]
              access: allow
            - paths: /one
              acess: bypass
          ghost:
            - paths: ["/**"]
              access: deny
        """,
    "d_broken.yaml": """\
        company: Delta
        members:
          domains: [delta.example
        """,
    "e_nobody.yaml": """\
        company: Nobody
        members: {}
        session: {idle_timeout: 2h, lifetime: 1h}
        branding: {colour: red}
        """,
    "f_other.yaml": "hello: world\n",
    "g_rules.yaml": """\
        applications:
          wiki: []
        """,
}


def test_every_error_of_every_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    """One pass lists all problems in file order, each with the exact line and a plain sentence."""
    errors = _errors(_write(tmp_path, BROKEN), known_apps=["wiki"])
    assert errors == [
        ("a_acme.yaml", 4, 'unknown setting "enforce2fa" (did you mean "enforce_2fa"?)'),
        (
            "a_acme.yaml",
            6,
            '"pigeon" is not a second-factor method; '
            "choose from totp, webauthn, sms, voice, email, recovery",
        ),
        ("a_acme.yaml", 7, 'the default method "sms" is not in methods.allowed (totp)'),
        (
            "a_acme.yaml",
            8,
            'deferral must be a duration such as "30m", "48h" or "21d", not "2 days"',
        ),
        ("a_acme.yaml", 10, '"10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?'),
        ("a_acme.yaml", 10, '"10.0.0.300/8" is not an IPv4 or IPv6 network'),
        ("a_acme.yaml", 12, 'duplicate key "enforce_2fa" (first given on line 11)'),
        ("b_beta.yaml", 1, 'setting "company" has no value'),
        (
            "b_beta.yaml",
            5,
            'domain "acme.example" is already claimed by company "Acme" in '
            f"{tmp_path / 'a_acme.yaml'}",
        ),
        (
            "b_beta.yaml",
            6,
            'admin "boss@else.example" is not a member of this company; add the address to '
            "members.users or its domain to members.domains",
        ),
        ("b_beta.yaml", 7, "account_type must be one of partner, client, not 3"),
        ("b_beta.yaml", 8, 'enforce_2fa must be true or false, not "yes"'),
        ("c_rules.yaml", 3, 'the path pattern "static" must start with "/"'),
        (
            "c_rules.yaml",
            4,
            "applications.wiki[0].access must be one of bypass, deny, one_factor, two_factor, "
            'not "allow"',
        ),
        (
            "c_rules.yaml",
            5,
            'applications.wiki[1].paths must be a list, not "/one" '
            '(write ["/one"] for a single item)',
        ),
        (
            "c_rules.yaml",
            5,
            'missing required setting "applications.wiki[1].access"',
        ),
        (
            "c_rules.yaml",
            6,
            'unknown setting "acess" in applications.wiki[1] (did you mean "access"?)',
        ),
        ("c_rules.yaml", 7, 'no application named "ghost" in the settings; known: wiki'),
        ("d_broken.yaml", 4, "YAML syntax error: expected ',' or ']', but got '<stream end>'"),
        (
            "e_nobody.yaml",
            2,
            'company "Nobody" has no members: list at least one domain, user or group under members',
        ),
        (
            "e_nobody.yaml",
            3,
            "session.idle_timeout (2h) is longer than session.lifetime (1h)",
        ),
        (
            "e_nobody.yaml",
            4,
            'branding.colour must be a colour such as "#aa3300" or "#a30", not "red"',
        ),
        (
            "f_other.yaml",
            1,
            "this is neither a company file (with company:) nor an access file "
            "(with applications:)",
        ),
        (
            "g_rules.yaml",
            2,
            f'application "wiki" already has rules in {tmp_path / "c_rules.yaml"}; '
            "keep them in one file",
        ),
    ]


def test_load_raises_config_invalid_with_the_same_errors(tmp_path: Path) -> None:
    """load_policy_dir raises what check_policy_dir returns."""
    _write(tmp_path, BROKEN)
    with pytest.raises(ConfigInvalid) as caught:
        load_policy_dir(tmp_path, known_apps=["wiki"])
    assert caught.value.errors == check_policy_dir(tmp_path, known_apps=["wiki"])
    assert str(caught.value).count("\n") == len(caught.value.errors) - 1


def test_an_explicit_user_claimed_twice_names_both_files(tmp_path: Path) -> None:
    """The same address listed by two companies is an error in the second file."""
    _write(
        tmp_path,
        {
            "one.yaml": "company: One\nmembers: {users: [Pat@x.example]}\n",
            "two.yaml": "company: Two\nmembers:\n  users:\n    - pat@x.example\n",
        },
    )
    assert _errors(tmp_path) == [
        (
            "two.yaml",
            4,
            f'user "pat@x.example" is already claimed by company "One" in {tmp_path / "one.yaml"}',
        )
    ]


def test_a_company_and_access_file_in_one_is_refused(tmp_path: Path) -> None:
    """A file is one kind or the other."""
    _write(tmp_path, {"mixed.yaml": "company: X\napplications: {}\n", "empty.yaml": ""})
    assert _errors(tmp_path) == [
        ("empty.yaml", 1, "the file is empty; a policy file has company: or applications:"),
        (
            "mixed.yaml",
            1,
            "a policy file has company: or applications:, not both; split it in two",
        ),
    ]


def test_unknown_applications_are_only_checked_when_known_apps_are_given(tmp_path: Path) -> None:
    """Without known_apps any application name is accepted; with none known, it says so."""
    _write(tmp_path, {"rules.yaml": "applications:\n  wiki:\n    - {paths: [/a], access: deny}\n"})
    assert check_policy_dir(tmp_path) == []
    assert _errors(tmp_path, known_apps=[]) == [
        ("rules.yaml", 2, 'no application named "wiki" in the settings; known: none')
    ]


def test_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    """No traceback, one sentence naming the directory."""
    missing = tmp_path / "nope"
    assert check_policy_dir(missing) == [
        ConfigError(str(missing), 0, "the directory does not exist")
    ]
    file = tmp_path / "file.yaml"
    file.write_text("company: X\n")
    [error] = check_policy_dir(file)
    assert error.file == str(file)
    assert error.message.startswith("cannot read the policy directory")


def test_an_empty_directory_is_an_empty_policy(tmp_path: Path) -> None:
    """No files: no companies, and every path needs two factors."""
    policy = load_policy_dir(tmp_path)
    assert policy.companies == ()
    assert policy.access_for("wiki", "GET", "/") == (Access.TWO_FACTOR, None)


def test_more_rule_and_member_mistakes(tmp_path: Path) -> None:
    """Methods, impossible patterns, "@" in domains and bad logos are each explained."""
    _write(
        tmp_path,
        {
            "co.yaml": """\
                company: Co
                members:
                  domains: ["@co.example", "co", co.example]
                  users: ["a b"]
                methods: {allowed: []}
                branding: {logo: "//evil.example/x.png", favicon: "http://co.example/f.ico"}
                """,
            "rules.yaml": """\
                applications:
                  wiki:
                    - {paths: ["/a?b=1", "/x/../y"], methods: ["GE T"], access: deny}
                    - {paths: [/b], methods: [], access: deny}
                    - just text
                """,
        },
    )
    assert _errors(tmp_path) == [
        ("co.yaml", 3, 'write the domain without "@": "co.example"'),
        ("co.yaml", 3, '"co" is not an email domain such as "acme.example"'),
        ("co.yaml", 4, '"a b" is not a user name or address: it contains a space'),
        ("co.yaml", 5, "methods.allowed must list at least one item"),
        (
            "co.yaml",
            6,
            'branding.logo must be a path such as "/logo.png" or an https URL, '
            'not "//evil.example/x.png"',
        ),
        (
            "co.yaml",
            6,
            'branding.favicon must be a path such as "/favicon.png" or an https URL, '
            'not "http://co.example/f.ico"',
        ),
        (
            "rules.yaml",
            3,
            'the path pattern "/a?b=1" cannot match: rules see the path without the query string',
        ),
        (
            "rules.yaml",
            3,
            'the path pattern "/x/../y" cannot match: '
            'request paths are compared with "." and ".." resolved',
        ),
        ("rules.yaml", 3, '"GE T" is not an HTTP method such as GET or POST'),
        ("rules.yaml", 4, "applications.wiki[1].methods must list at least one item"),
        (
            "rules.yaml",
            5,
            'applications.wiki[2] must be a mapping of settings, not "just text"',
        ),
    ]


def test_no_members_is_reported_alongside_other_mistakes(tmp_path: Path) -> None:
    """An unrelated error earlier in the file does not hide the missing members."""
    _write(tmp_path, {"x.yaml": "company: X\nenforce2fa: true\nadmins: [root]\n"})
    assert _errors(tmp_path) == [
        (
            "x.yaml",
            1,
            'company "X" has no members: list at least one domain, user or group under members',
        ),
        ("x.yaml", 2, 'unknown setting "enforce2fa" (did you mean "enforce_2fa"?)'),
        (
            "x.yaml",
            3,
            'admin "root" is not a member of this company; add the address to members.users '
            "or its domain to members.domains",
        ),
    ]


def test_code_limits_are_read_and_checked(tmp_path: Path) -> None:
    """methods.codes sets the code numbers; out-of-range values are reported with their line."""
    from datetime import timedelta

    (tmp_path / "a.yaml").write_text(
        "company: A\nmembers:\n  domains: [a.example]\nmethods:\n  allowed: [totp, sms]\n"
        "  codes:\n    valid_for: 5m\n    tries: 3\n    resend_after: 1m\n    sends_per_hour: 4\n"
    )
    company = load_policy_dir(tmp_path).companies[0]
    assert company.codes.valid_for == timedelta(minutes=5)
    assert (company.codes.tries, company.codes.sends_per_hour) == (3, 4)
    assert company.codes.resend_after == timedelta(minutes=1)
    (tmp_path / "a.yaml").write_text(
        "company: A\nmembers:\n  domains: [a.example]\nmethods:\n  codes:\n    tries: 0\n    tries2: 1\n"
    )
    errors = check_policy_dir(tmp_path)
    assert any(e.line == 6 and "tries" in e.message for e in errors)
    assert any(e.line == 7 and "tries2" in e.message for e in errors)


def test_attempt_limits_are_read_and_checked(tmp_path: Path) -> None:
    """`attempts:` sets the delays and lockouts; numbers that would let one address lock a
    user out everywhere, or pass NIST's 100, are reported with their line."""
    _write(
        tmp_path,
        {
            "a.yaml": """\
                company: A
                members:
                  domains: [a.example]
                attempts:
                  window: 10m
                  per_user_and_address: 4
                  per_user: 12
                  per_address: 20
                  free: 2
                  first_delay: 1s
                  max_delay: 30s
                """
        },
    )
    attempts = load_policy_dir(tmp_path).companies[0].attempts
    assert attempts.window == timedelta(minutes=10)
    assert (attempts.per_user_and_address, attempts.per_user, attempts.per_address) == (4, 12, 20)
    assert (attempts.free, attempts.first_delay, attempts.max_delay) == (
        2,
        timedelta(seconds=1),
        timedelta(seconds=30),
    )
    head = "company: A\nmembers:\n  domains: [a.example]\nattempts:\n"
    cases = {
        "  per_user_and_address: 30\n": (4, "must be smaller than attempts.per_user (30)"),
        "  per_user_and_address: 9\n  per_address: 5\n": (4, "cannot be larger than"),
        "  first_delay: 2m\n": (4, "attempts.first_delay (2m) is longer than attempts.max_delay"),
        "  per_user: 101\n": (5, "a whole number from 1 to 100"),
        "  lockout: 5\n": (5, "lockout"),
        "  window: 2d\n": (4, "attempts.window (48h) is longer than a day"),
        "  per_user_per_day: 150\n": (5, "a whole number from 1 to 100"),
    }
    for body, (line, message) in cases.items():
        (tmp_path / "a.yaml").write_text(head + body)
        errors = check_policy_dir(tmp_path)
        assert [(e.line, message in e.message) for e in errors] == [(line, True)], (body, errors)
