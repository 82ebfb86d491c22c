"""Second review of the directory sign-in, each finding a test that failed before its fix:
wrong passwords counted under the person the directory names, not under each spelling a user
filter accepts; a password the LDAP library refuses is a wrong one, known user or not; a hung directory is the
503 page within one deadline; an unknown name's bind touches no real entry; a group
counts only under the one name no other group can have."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE, Connection, Server

from gateway.identity.ldap import Directory
from tests.ldap import test_ldap_portal as portal
from tests.ldap.slapd import (
    GROUPS,
    PEOPLE,
    ROOT_DN,
    ROOT_PASSWORD,
    SERVICE_DN,
    SUFFIX,
    Slapd,
    make_slapd,
)
from tests.ldap.test_ldap_review import add
from tests.support import portal_login

echo_url = portal.echo_url  # the upstream that reports what it received
UID_OR_MAIL = "(&(objectClass=inetOrgPerson)(|(uid={user})(mail={user})))"


async def test_a_locked_user_stays_locked_under_another_spelling(
    make_gateway: Any, echo_url: str, tmp_path: Path, slapd: Slapd
) -> None:
    """The filter takes bob's uid or his address: five wrong passwords as "bob" hold bob, and
    his address (the same entry) is held too, rather than a fresh count of its own; wrong
    passwords as the address count for bob as well. Unknown names are still counted."""
    app = portal.ldap_app(echo_url, tmp_path, slapd.url, user_filter=UID_OR_MAIL)
    client = await portal.gateway(make_gateway, app)
    for _ in range(5):
        assert (await portal_login(client, "bob", "not-bobs-password")).status == 401
    held = await portal_login(client, "bob@example.org", "bob-password")
    assert held.status == 429, await held.text()
    for _ in range(5):
        assert (await portal_login(client, "Alice@Example.org", "wrong")).status == 401
    assert (await portal_login(client, "alice", "alice-password")).status == 429
    for _ in range(5):
        assert (await portal_login(client, "nobody@example.org", "wrong")).status == 401
    assert (await portal_login(client, "nobody@example.org", "wrong")).status == 429


async def test_a_password_the_library_refuses_is_a_wrong_password_for_everyone(
    make_gateway: Any,
    echo_url: str,
    tmp_path: Path,
    slapd: Slapd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ldap3 runs SASLprep on a bind's password and refuses some (a control character, a
    private-use one): that was the 503 page for a known user but a wrong password for an
    unknown one. Now it is a wrong password for both, counted, after the same requests."""
    binds: list[str] = []
    bind = Directory._bind

    def counted(self: Directory, conn: Any) -> bool:
        binds.append(str(conn.user))
        return bind(self, conn)

    monkeypatch.setattr(Directory, "_bind", counted)
    client = await portal.gateway(make_gateway, portal.ldap_app(echo_url, tmp_path, slapd.url))
    sent: dict[str, list[str]] = {}
    for name in ("bob", "nobody"):
        for password in ("bob\x07password", "bob-password\ue000"):
            binds.clear()
            answer = await portal_login(client, name, password)
            assert answer.status == 401, await answer.text()
            assert portal.WRONG in await answer.text()
            sent.setdefault(name, []).extend(dn for dn in binds if dn != SERVICE_DN)
    assert len(sent["bob"]) == len(sent["nobody"]), sent
    for _ in range(3):  # counted: five wrong passwords, then even the right one waits
        assert (await portal_login(client, "bob", "\x00")).status == 401
    assert (await portal_login(client, "bob", "bob-password")).status == 429


async def test_a_hung_directory_gives_the_503_page_in_bounded_time(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """A directory that takes connections but never answers (slapd stopped with SIGSTOP: the
    kernel still accepts): each answer's timeout alone let a sign-in wait for several of them
    (the pooled connection's search, then a new connection's bind). The whole check has one
    deadline, by default connect_timeout + timeout, and `deadline` sets it."""
    own = make_slapd(tmp_path / "slapd")
    try:
        app = portal.ldap_app(echo_url, tmp_path, own.url, connect_timeout=1, timeout=4)
        client = await portal.gateway(make_gateway, app)
        assert (await portal_login(client, "bob", "bob-password")).status == 303
        client.session.cookie_jar.clear()
        assert own.process is not None
        own.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            answer = await asyncio.wait_for(portal_login(client, "bob", "bob-password"), 30)
            assert answer.status == 503, await answer.text()
            assert time.monotonic() - started < 6.5  # the deadline, 5 s, and some slack
        finally:
            own.process.send_signal(signal.SIGCONT)
    finally:
        own.stop()
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # connections wait in the backlog, never read
        url = f"ldap://127.0.0.1:{hung.getsockname()[1]}"
        (tmp_path / "hung").mkdir()
        app = portal.ldap_app(echo_url, tmp_path / "hung", url, timeout=8, deadline=1)
        client = await portal.gateway(make_gateway, app)
        started = time.monotonic()
        answer = await portal_login(client, "alice", "alice-password")
        assert answer.status == 503
        assert time.monotonic() - started < 3


async def test_an_unknown_name_binds_as_no_real_entry(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """A name the filter finds nobody for still costs a bind, for its timing. That bind was as
    cn=<name>,<base_dn>: with base_dn at the top, typing the service account's own cn sent
    wrong passwords to it, and the directory's ppolicy (three failures here) locked it, and
    with it every sign-in. Now the bind names an entry that cannot exist."""
    own = make_slapd(tmp_path / "slapd")
    try:
        root = Connection(Server(f"ldap://127.0.0.1:{own.port}"), ROOT_DN, ROOT_PASSWORD)
        assert root.bind()
        policy = f"cn=default,ou=policies,{SUFFIX}"
        assert root.modify(policy, {"pwdMaxFailure": [(MODIFY_REPLACE, ["3"])]}), root.result
        portal_dn = f"cn=portal,{SUFFIX}"  # a service account beside the people
        account = {"cn": "portal", "userPassword": "portal-secret"}
        assert root.add(portal_dn, ["organizationalRole", "simpleSecurityObject"], account)
        root.unbind()
        settings = {"bind_dn": portal_dn, "base_dn": SUFFIX}
        app = portal.ldap_app(echo_url, tmp_path, own.url, "portal-secret", **settings)
        client = await portal.gateway(make_gateway, app)
        for _ in range(3):
            assert (await portal_login(client, "portal", "a-guess")).status == 401
        service = Connection(Server(f"ldap://127.0.0.1:{own.port}"), portal_dn, "portal-secret")
        assert service.bind(), service.result  # not locked
        service.unbind()
    finally:
        own.stop()


SALES = f"ou=sales,{GROUPS}"
BY_ATTRIBUTE = {"attribute": "memberOf", "base_dn": GROUPS}
BY_SEARCH = {"base_dn": GROUPS, "filter": "(&(objectClass=groupOfNames)(member={dn}))"}


@pytest.mark.parametrize("groups", [BY_ATTRIBUTE, BY_SEARCH], ids=["memberOf", "search"])
async def test_a_group_of_the_same_name_elsewhere_is_not_the_listed_one(
    make_gateway: Any, echo_url: str, tmp_path: Path, groups: dict[str, str]
) -> None:
    """Sales has an "admins" group of its own (cn=admins,ou=sales,ou=groups); its first value
    made it "admins" too, and its member bob a member of the company that lists the admins of
    ou=groups. Only the groups directly under groups.base_dn count (siblings' names cannot
    collide), and two of a user's groups that would share a name are both left out."""
    own = make_slapd(tmp_path / "slapd")
    try:
        bob = f"uid=bob,{PEOPLE}"
        add(own, SALES, ["organizationalUnit"], {"ou": "sales"})
        add(own, f"cn=admins,{SALES}", ["groupOfNames"], {"cn": "admins", "member": [bob]})
        client = await portal.gateway(
            make_gateway, portal.ldap_app(echo_url, tmp_path, own.url, groups=groups)
        )
        headers, page = await portal.signed_in_headers(client, "bob", "bob-password")
        assert headers["remote-groups"] == "staff"
        assert "Admins of the Directory" not in page
        client.session.cookie_jar.clear()  # signed out: alice next
        headers, page = await portal.signed_in_headers(client, "alice", "alice-password")
        assert sorted(headers["remote-groups"].split(",")) == ["admins", "staff"]
        assert "Admins of the Directory" in page
    finally:
        own.stop()


async def test_two_groups_of_one_name_name_neither(
    make_gateway: Any, echo_url: str, tmp_path: Path
) -> None:
    """Groups named by an attribute other than their RDN's (businessCategory here), which
    two of bob's groups share: which of them the policy means cannot be told, so neither
    counts."""
    own = make_slapd(tmp_path / "slapd")
    try:
        bob = f"uid=bob,{PEOPLE}"
        for cn in ("sales-admins", "it-admins"):
            group = {"cn": cn, "member": [bob], "businessCategory": "admins"}
            add(own, f"cn={cn},{GROUPS}", ["groupOfNames"], group)
        groups = {**BY_SEARCH, "name_attribute": "businessCategory"}
        client = await portal.gateway(
            make_gateway, portal.ldap_app(echo_url, tmp_path, own.url, groups=groups)
        )
        headers, page = await portal.signed_in_headers(client, "bob", "bob-password")
        assert "remote-groups" not in headers
        assert "Admins of the Directory" not in page
    finally:
        own.stop()


async def test_a_held_name_costs_the_directory_nothing(
    make_gateway: Any,
    echo_url: str,
    tmp_path: Path,
    slapd: Slapd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The search that names the person comes before the wait; a name (or an address) held
    already is refused without it, so guesses at a held name do not each cost a search."""
    searches: list[str] = []
    find = Directory._find

    def counted(self: Directory, name: str) -> Any:
        searches.append(name)
        return find(self, name)

    monkeypatch.setattr(Directory, "_find", counted)
    client = await portal.gateway(make_gateway, portal.ldap_app(echo_url, tmp_path, slapd.url))
    for _ in range(5):
        assert (await portal_login(client, "bob", "not-bobs-password")).status == 401
    assert searches == ["bob"] * 5
    assert (await portal_login(client, "bob", "bob-password")).status == 429
    assert searches == ["bob"] * 5
