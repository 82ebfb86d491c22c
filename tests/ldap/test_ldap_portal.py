"""Portal mode against a real OpenLDAP slapd (tests/ldap/slapd.py), over HTTP through the
gateway app: the password checked by the directory, the second factor still asked, groups sent
on as Remote-Groups and placing the user in a company, and every way a sign-in must not pass."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import admin
from gateway.identity.ldap import Directory
from gateway.keys import RUNTIME
from tests.ldap.slapd import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    free_port,
    make_slapd,
)
from tests.support import enrol_totp, portal_login

WRONG = "The user name or password is not right"
COMPANY = """
company: Directory Admins
members:
  groups: [Admins]
branding:
  name: Admins of the Directory
"""


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "headers": dict(request.headers)})


@pytest.fixture
async def echo_url() -> Any:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url(""))
    await server.close()


def ldap_app(
    upstream: str, tmp_path: Path, url: str, password: str = SERVICE_PASSWORD, **ldap: Any
) -> dict[str, Any]:
    """A portal application whose directory is at `url`, search-then-bind unless `ldap` says."""
    secret = tmp_path / "ldap-bind-password"
    secret.write_text(password + "\n")
    settings: dict[str, Any] = {
        "url": url,
        "base_dn": PEOPLE,
        "bind_dn": SERVICE_DN,
        "bind_password": {"file": str(secret)},
        "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))",
        "groups": {"attribute": "memberOf", "base_dn": GROUPS},
        "connect_timeout": 1,
        "timeout": 2,
    }
    settings.update(ldap)
    if url.startswith("ldap:") and not settings.get("start_tls"):  # slapd on this host
        settings.setdefault("allow_plaintext", True)
    settings = {key: value for key, value in settings.items() if value is not None}
    return {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "portal",
        "portal": {"ldap": settings},
    }


async def gateway(make_gateway: Any, app: dict[str, Any]) -> Any:
    return await make_gateway({"app": app}, policies={"directory.yaml": COMPANY})


async def signed_in_headers(client: Any, user: str, password: str) -> tuple[dict[str, str], str]:
    """Password, then the enrolment of an authenticator app; the headers the application then
    receives (lower-case names, with Remote-* sent by the client too, to be dropped) and the
    enrolment page."""
    login = await portal_login(client, user, password)
    assert login.status == 303, await login.text()
    location = login.headers["Location"]
    assert location.startswith("/.gateway/enrol")
    page = await (await client.get(location)).text()
    await enrol_totp(client, location)
    forged = {"Remote-User": "mallory", "Remote-Groups": "root"}
    seen = await (await client.get("/report", headers=forged)).json()
    return {k.lower(): v for k, v in seen["headers"].items()}, page


async def test_search_then_bind_second_factor_and_groups(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """The right password found by the service account's search gets to the second factor, then
    in; the application gets the user and the directory's groups, never the client's."""
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    first = await client.get("/report", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"].startswith("/.gateway/login")
    headers, page = await signed_in_headers(client, "Alice", "alice-password")
    assert headers["remote-user"] == "alice"
    assert headers["remote-name"] == "Alice Liddell"
    assert headers["remote-email"] == "alice@example.org"
    assert headers["remote-groups"] == "staff,admins"
    # members by group: the company that lists "admins" is alice's (its brand on the page),
    # and its admins see her among the members (the groups recorded at her sign-in)
    assert "Admins of the Directory" in page
    runtime = client.app[RUNTIME]
    record = await runtime.store.get_user("alice")
    assert record is not None and record.company == "directory"
    assert record.facts["groups"] == ["staff", "admins"]
    company = runtime.policy.current.company_by_id("directory")
    assert company is not None
    found = await admin.members(runtime.store, runtime.policy.current, company, time.time())
    assert [m.user for m in found] == ["alice"]


async def test_a_name_or_address_a_header_cannot_carry_is_left_out(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """A display name with a line break, or an address with a control character, from the
    directory never reaches a header: the user's own name stands in for the display name, and
    the address is left out (no 500, no header of the directory's making)."""
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    headers, _ = await signed_in_headers(client, "mallory", "mallory-password")
    assert headers["remote-user"] == "mallory"
    assert headers["remote-name"] == "mallory"
    assert "remote-email" not in headers


async def test_the_directory_names_the_user(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """A filter that takes a user name or an address: either way the user is the entry's uid,
    so one person is one gateway user (with one second factor), whatever they type."""
    query = "(&(objectClass=inetOrgPerson)(|(uid={user})(mail={user})))"
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url, user_filter=query))
    headers, _ = await signed_in_headers(client, "Alice@Example.org", "alice-password")
    assert headers["remote-user"] == "alice"


async def test_a_user_in_no_listed_group_is_in_no_company(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    headers, page = await signed_in_headers(client, "bob", "bob-password")
    assert headers["remote-groups"] == "staff"
    assert "Admins of the Directory" not in page


async def test_wrong_passwords_are_counted_like_the_users_file(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """Five wrong passwords, the same message as an unknown user; then even the right one must
    wait (the regulation's delay), as with the users file."""
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    unknown = await portal_login(client, "nobody", "whatever")
    assert unknown.status == 401 and WRONG in await unknown.text()
    for _ in range(5):
        wrong = await portal_login(client, "bob", "not-bobs-password")
        assert wrong.status == 401 and WRONG in await wrong.text()
    held = await portal_login(client, "bob", "bob-password")
    assert held.status == 429, await held.text()


async def test_a_disabled_account_is_refused(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """dave's account is locked in the directory (ppolicy): his right password is refused like a
    wrong one."""
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    answer = await portal_login(client, "dave", "dave-password")
    assert answer.status == 401 and WRONG in await answer.text()


@pytest.mark.parametrize(
    "name",
    ["al*", "*", "alice)(uid=*", "*)(|(uid=*", "alice\x00", "alice\x00)(uid=*", "ali\\2a"],
)
async def test_user_name_injection_is_refused(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd, name: str
) -> None:
    """Filter characters in a name match themselves (RFC 4515), NUL and control characters are
    refused before the directory is asked: alice's password with any of these gets nobody in."""
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    answer = await portal_login(client, name, "alice-password")
    assert answer.status == 401, await answer.text()
    assert WRONG in await answer.text()


async def test_an_empty_password_never_reaches_the_directory(
    make_gateway: Any,
    echo_url: str,
    tmp_path: Path,
    slapd: Slapd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty password would be an unauthenticated bind, which servers answer with success:
    it is refused before any request."""

    def no_request(self: Directory, name: str, password: str) -> Any:
        raise AssertionError("the directory was asked")

    monkeypatch.setattr(Directory, "_check", no_request)
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    answer = await portal_login(client, "alice", "")
    assert answer.status == 401 and WRONG in await answer.text()


async def test_an_unknown_user_costs_a_bind_like_a_known_one(
    make_gateway: Any,
    echo_url: str,
    tmp_path: Path,
    slapd: Slapd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No user enumeration by timing: a wrong password for alice and any password for nobody
    each send one bind as a user (after the service account's own, on first use)."""
    binds: list[str] = []
    bind = Directory._bind

    def counted(self: Directory, conn: Any) -> bool:
        binds.append(str(conn.user))
        return bind(self, conn)

    monkeypatch.setattr(Directory, "_bind", counted)
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url))
    for name in ("alice", "nobody"):
        binds.clear()
        answer = await portal_login(client, name, "not-the-password")
        assert answer.status == 401
        assert len([dn for dn in binds if dn != SERVICE_DN]) == 1, binds


async def test_an_unreachable_directory_fails_closed(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """Nothing listens at the directory's address: the 503 page, no session, nothing counted."""
    url = f"ldap://127.0.0.1:{free_port()}"
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, url))
    for _ in range(6):  # more than the free tries: a failure of the directory is not counted
        answer = await portal_login(client, "alice", "alice-password")
        assert answer.status == 503, await answer.text()
        assert "cannot reach the directory" in await answer.text()
    assert "gateway_session" not in [cookie.key for cookie in client.session.cookie_jar]
    assert (await client.get("/report", allow_redirects=False)).status == 303


async def test_a_directory_that_does_not_answer_fails_closed(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """The port takes connections but nothing answers (a hung server): after the timeout, the
    503 page."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # connections wait in the backlog, never read
        url = f"ldap://127.0.0.1:{hung.getsockname()[1]}"
        client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, url, timeout=1))
        started = time.monotonic()
        answer = await portal_login(client, "alice", "alice-password")
        assert answer.status == 503
        assert time.monotonic() - started < 10


async def test_a_refused_service_account_fails_closed(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, slapd.url, "wrong"))
    answer = await portal_login(client, "alice", "alice-password")
    assert answer.status == 503


async def test_a_directory_that_goes_down_and_comes_back(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """A directory stopped after a sign-in (its pooled connection now dead): 503; started again:
    the next sign-in works, on a new connection."""
    own = make_slapd(tmp_path / "slapd")
    try:
        client = await gateway(make_gateway, ldap_app(echo_url, tmp_path, own.url))
        assert (await portal_login(client, "bob", "bob-password")).status == 303
        client.session.cookie_jar.clear()
        own.stop()
        assert (await portal_login(client, "bob", "bob-password")).status == 503
        own.start()
        assert (await portal_login(client, "bob", "bob-password")).status == 303
    finally:
        own.stop()


async def test_start_tls_with_a_ca_file_and_direct_bind(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """StartTLS checked against the CA file; direct bind as uid={user}; groups by a search."""
    app = ldap_app(
        echo_url,
        tmp_path,
        slapd.url,
        bind_dn=None,
        bind_password=None,
        base_dn=None,
        user_dn=f"uid={{user}},{PEOPLE}",
        start_tls=True,
        ca_file=str(slapd.ca_file),
        groups={"base_dn": GROUPS, "filter": "(&(objectClass=groupOfNames)(member={dn}))"},
    )
    client = await gateway(make_gateway, app)
    wrong = await portal_login(client, "alice,ou=people", "alice-password")
    assert wrong.status == 401
    headers, page = await signed_in_headers(client, "alice", "alice-password")
    assert headers["remote-user"] == "alice"
    assert sorted(headers["remote-groups"].split(",")) == ["admins", "staff"]
    assert "Admins of the Directory" in page
    client.session.cookie_jar.clear()  # signed out: the login page again
    disabled = await portal_login(client, "dave", "dave-password")
    assert disabled.status == 401


async def test_ldaps_with_a_ca_file(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """ldaps://: TLS from the first byte, checked against the CA file."""
    app = ldap_app(echo_url, tmp_path, slapd.ldaps_url, ca_file=str(slapd.ca_file))
    client = await gateway(make_gateway, app)
    headers, _ = await signed_in_headers(client, "bob", "bob-password")
    assert headers["remote-user"] == "bob"


async def test_start_tls_without_the_ca_fails_closed(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """The server's certificate is not signed by a CA the gateway trusts (no ca_file: the
    system's): no password goes over that connection, the 503 page instead."""
    app = ldap_app(echo_url, tmp_path, slapd.url, start_tls=True)
    client = await gateway(make_gateway, app)
    answer = await portal_login(client, "alice", "alice-password")
    assert answer.status == 503
