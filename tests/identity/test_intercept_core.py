"""Intercept mode's pure core: cookie-name readings, judging a login answer, reading whoami,
removing credentials, and the settings that would fail open."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.cookies import parse_set_cookie
from gateway.identity.body_fields import query_fields
from gateway.identity.cookie_names import CookieNames, hidden_names, readings
from gateway.identity.credentials import strip_headers, without_credentials
from gateway.identity.intercept import (
    SplitCookies,
    Verdict,
    fields_match,
    is_login_request,
    is_logout_request,
    judge,
)
from gateway.identity.whoami import WhoamiUnreadable, user_from_answer
from gateway.intercept_settings import (
    Credentials,
    Intercept,
    LoginRequest,
    Logout,
    Signals,
    Whoami,
    weaknesses,
)
from gateway.settings import settings_from_dict
from gateway.yamlsource import ConfigInvalid

# --- cookie names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["sid", "SID", " sid ", "s%69d", "S%49D", "sid[x]", "sid[]"],
)
def test_every_reading_of_a_session_cookie_name_matches(name: str) -> None:
    """Case, spaces, percent-encoding and PHP's array syntax all read as `sid`."""
    assert CookieNames(["sid"]).matches(name)


@pytest.mark.parametrize("name", ["app.sess", "app sess", "app[sess", "APP_SESS", "app%2Esess"])
def test_php_reads_dots_spaces_and_brackets_as_underscores(name: str) -> None:
    assert CookieNames(["app_sess"]).matches(name)
    assert CookieNames(["app.sess"]).matches(name)


def test_patterns_match_derived_names_only() -> None:
    names = CookieNames(["DW*", "user-?-x"])
    assert names.matches("DW4a7b") and names.matches("dw4a7b") and names.matches("user-1-x")
    assert not names.matches("DokuWiki") and not names.matches("user-12-x")


def test_other_names_do_not_match() -> None:
    names = CookieNames(["sid"])
    assert not names.matches("sidx") and not names.matches("xsid") and not names.matches("csrf")
    assert "sid" in readings("SID")


def test_hidden_names_split_the_way_any_framework_might() -> None:
    assert hidden_names(["a=1, sid=2", "b=3 sid=4;c=5"]) == ["a", "sid", "b", "sid", "c"]


# --- recognising the login ----------------------------------------------------------------


def test_the_login_request_needs_its_method_path_and_query_values() -> None:
    login = LoginRequest(path="/doku.php", fields=(("do", "login"),))
    assert is_login_request(login, "post", "/doku.php", "id=start&do=login")
    assert not is_login_request(login, "POST", "/doku.php", "id=start")
    assert not is_login_request(login, "GET", "/doku.php", "do=login")
    assert not is_login_request(login, "POST", "/doku.php", "do=login&do=save")
    assert not is_login_request(login, "POST", "/doku.php", "do=login&DO=save")


def test_the_login_fields_may_be_in_the_body() -> None:
    """DokuWiki posts `do=login` in the body: query and body fields count together, once."""
    required = (("do", "login"),)
    assert fields_match(required, [*query_fields("id=start"), ("do", "login"), ("u", "a")])
    assert not fields_match(required, [*query_fields("do=save"), ("do", "login")])
    assert not fields_match(required, [("do[login]", "1")])


def test_logout_is_matched_by_method_and_query() -> None:
    config = Intercept(CookieNames(["sid"]), logout=Logout("/logout", ("POST",)))
    assert is_logout_request(config, "POST", "/logout/", "")
    assert not is_logout_request(config, "GET", "/logout", "")
    wiki = Intercept(
        CookieNames(["sid"]), logout=Logout("/doku.php", ("GET",), (("do", "logout"),))
    )
    assert is_logout_request(wiki, "GET", "/doku.php", "id=start&do=logout&sectok=x")
    assert not is_logout_request(wiki, "GET", "/doku.php", "id=start")


# --- judging the answer -------------------------------------------------------------------


def split(*lines: str, other: tuple[str, ...] = ()) -> SplitCookies:
    parsed = [parse_set_cookie(line) for line in lines]
    return SplitCookies(session=[c for c in parsed if c is not None], other=list(other))


LOGIN = LoginRequest(path="/login")


@pytest.mark.parametrize(
    ("status", "location", "cookies", "sent", "verdict"),
    [
        (302, "/home", split("sid=new"), {}, Verdict.SUCCESS),
        (302, "/home", split("sid=same"), {"sid": "same"}, Verdict.FAILURE),  # not changed
        (200, None, split("sid=new"), {}, Verdict.FAILURE),  # PHP session_start on failure
        (302, "/login?error=1", split("sid=new"), {}, Verdict.FAILURE),  # back to the login
        (401, None, split("sid=new"), {}, Verdict.FAILURE),
        (302, "/home", split(other=("SESS=x",)), {}, Verdict.UNCLEAR),  # misnamed cookie
        (302, "/home", split(), {}, Verdict.FAILURE),  # nothing set at all
        (302, "/home", split("sid=; Max-Age=0"), {}, Verdict.FAILURE),  # only a deletion
    ],
)
def test_the_default_success_test(
    status: int, location: str | None, cookies: SplitCookies, sent: dict[str, str], verdict: Verdict
) -> None:
    """A success needs a new session-cookie value and a redirect that is not back to the
    login page; what sets cookies and is neither is UNCLEAR."""
    assert judge(LOGIN, status, location, cookies, sent, whoami=False).verdict is verdict


def test_configured_signals_narrow_success() -> None:
    login = LoginRequest(
        path="/login", success=Signals((302,), ("/app",)), failure=Signals((), ("/denied",))
    )
    assert judge(login, 302, "/app/x", split("sid=n"), {}, whoami=False).verdict is Verdict.SUCCESS
    assert judge(login, 303, "/app/x", split("sid=n"), {}, whoami=False).verdict is Verdict.UNCLEAR
    assert judge(login, 302, "/other", split("sid=n"), {}, whoami=False).verdict is Verdict.UNCLEAR
    assert judge(login, 302, "/denied", split("sid=n"), {}, whoami=False).verdict is Verdict.FAILURE


def test_with_whoami_only_plain_failures_are_decided_here() -> None:
    assert judge(LOGIN, 200, None, split(), {}, whoami=True).verdict is Verdict.SUCCESS
    assert judge(LOGIN, 403, None, split("sid=n"), {}, whoami=True).verdict is Verdict.FAILURE


# --- whoami -------------------------------------------------------------------------------


def test_whoami_reads_json_pattern_or_header() -> None:
    as_json = Whoami("/me", json=("user", "email"))
    assert user_from_answer(as_json, 200, {}, b'{"user": {"email": " Alice@X "}}') == "alice@x"
    assert user_from_answer(as_json, 200, {}, b'{"user": null}') is None
    as_text = Whoami("/", pattern=re.compile(r"Welcome, <b>([^<]+)</b>"))
    assert user_from_answer(as_text, 200, {}, b"Welcome, <b>al&amp;ice</b>") == "al&ice"
    assert user_from_answer(as_text, 200, {}, b"<form>log in</form>") is None
    as_header = Whoami("/", header="X-User")
    assert user_from_answer(as_header, 200, {"X-User": "bob"}, b"") == "bob"


@pytest.mark.parametrize("status", [302, 401, 403])
def test_whoami_redirect_or_refusal_means_nobody(status: int) -> None:
    assert user_from_answer(Whoami("/me", json=("user",)), status, {}, b"") is None


@pytest.mark.parametrize(
    ("status", "body"), [(500, b"{}"), (200, b"not json"), (200, b'{"user": 5}'), (404, b"")]
)
def test_whoami_answers_of_another_shape_are_unreadable(status: int, body: bytes) -> None:
    with pytest.raises(WhoamiUnreadable):
        user_from_answer(Whoami("/me", json=("user",)), status, {}, body)


# --- credentials --------------------------------------------------------------------------


def test_credential_headers_and_parameters_are_removed_under_any_spelling() -> None:
    config = Intercept(CookieNames(["sid"]), credentials=Credentials(("x-api-key",), ("token",)))
    headers: CIMultiDict[str] = CIMultiDict(
        {"authorization": "Basic x", "Proxy-Authorization": "y", "X_API_KEY": "k", "Accept": "*"}
    )
    strip_headers(config, headers)
    assert list(headers) == ["Accept"]
    query = "a=1&token=t&TOKEN=t&to%6Ben=t&token[]=t&b=2"
    assert without_credentials(config, query) == "a=1&b=2"


# --- settings -----------------------------------------------------------------------------


def app_settings(intercept: dict[str, Any]) -> dict[str, Any]:
    return {
        "secrets": {"session_keys": {"env": "SK"}, "encryption_key": {"env": "EK"}},
        "applications": {
            "app": {
                "upstream": "http://127.0.0.1:9",
                "hosts": ["*"],
                "identity": "intercept",
                "intercept": intercept,
            }
        },
    }


@pytest.mark.parametrize(
    ("intercept", "message"),
    [
        ({"session_cookies": ["sid"], "logout_path": "/x"}, "logout_path is now logout"),
        (
            {"session_cookies": ["sid"], "login": {"success_statuses": [302]}},
            "success_statuses is now success",
        ),
        ({"session_cookies": ["*"]}, "is not a cookie name or a pattern"),
        (
            {"session_cookies": ["sid"], "whoami": {"path": "/me", "json": "a", "header": "X"}},
            "exactly one of json, pattern or header",
        ),
        (
            {"session_cookies": ["sid"], "whoami": {"path": "/me", "pattern": "(a)(b)"}},
            "at most one group",
        ),
        (
            {"session_cookies": ["sid"], "login": {"username_field": "u", "account": "a@b"}},
            "not both",
        ),
    ],
)
def test_settings_that_could_fail_open_are_errors(intercept: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        settings_from_dict(app_settings(intercept), source=Path("gateway.yaml"))
    assert message in str(caught.value)


def test_weak_settings_are_warned_about() -> None:
    weak = Intercept(
        CookieNames(["DW*"]),
        login=LoginRequest(username_field=None, account="team@x", success=Signals((200,))),
    )
    found = " ".join(weaknesses(weak))
    assert "no whoami" in found and "2xx" in found and "shared login" in found
    assert "pattern" in found
    strong = Intercept(CookieNames(["sid"]), whoami=Whoami("/me", json=("user",)))
    assert weaknesses(strong) == ()


def test_policy_check_warns_about_weak_intercept_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gateway policy check -c` names each weakness of an application's intercept settings."""
    import yaml

    from gateway.cli import main

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "acme.yaml").write_text("company: Acme\nmembers: {domains: [acme.example]}\n")
    settings = app_settings({"session_cookies": ["DW*"], "login": {"success": {"status": [200]}}})
    settings["policy_dir"] = str(policies)
    settings["store"] = f"sqlite://{tmp_path / 'gateway.db'}"
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings))
    assert main(["policy", "check", str(policies), "-c", str(config), "--no-store"]) == 0
    err = capsys.readouterr().err
    assert "warning: application app: no whoami" in err
    assert "success.status lists a 2xx status" in err
    assert "session_cookies has a pattern" in err
