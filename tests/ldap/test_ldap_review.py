"""Review findings on the directory sign-in (issue 19, item 1), each a test that failed before
its fix: a direct bind with a `base_dn` search must find the very account that bound, not
another person's entry the filter happens to match; an entry with several values of its
`user_attribute` names nobody (one of them may be another person's name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import Connection, Server

from tests.ldap import test_ldap_portal as portal
from tests.ldap.slapd import PEOPLE, ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd, make_slapd
from tests.support import portal_login

echo_url = portal.echo_url  # the upstream that reports what it received


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A directory of this test's own, to add entries to."""
    server = make_slapd(tmp_path / "slapd")
    try:
        yield server
    finally:
        server.stop()


def add(server: Slapd, dn: str, classes: list[str], attributes: dict[str, Any]) -> None:
    conn = Connection(Server(f"ldap://127.0.0.1:{server.port}"), ROOT_DN, ROOT_PASSWORD)
    assert conn.bind()
    assert conn.add(dn, classes, attributes), conn.result
    conn.unbind()


async def test_a_direct_bind_must_find_the_account_that_bound(
    make_gateway: Any, echo_url: str, tmp_path: Path, own_slapd: Slapd
) -> None:
    """Mallory's own account is cn=bob,ou=staff; typing "bob" with her password binds as it,
    and the filter (uid={user}) under base_dn finds the real bob. She is refused, and the real
    bob, whose bind name is his own entry, still signs in."""
    add(own_slapd, f"ou=staff,{SUFFIX}", ["organizationalUnit"], {"ou": "staff"})
    mallory = {"cn": "bob", "sn": "Other", "uid": "robert2", "userPassword": "mallorys-own"}
    add(own_slapd, f"cn=bob,ou=staff,{SUFFIX}", ["inetOrgPerson"], mallory)
    staff = f"cn={{user}},ou=staff,{SUFFIX}"
    settings = {"bind_dn": None, "bind_password": None, "base_dn": PEOPLE, "user_dn": staff}
    app = portal.ldap_app(echo_url, tmp_path, own_slapd.url, **settings)
    client = await portal.gateway(make_gateway, app)
    assert (await portal_login(client, "bob", "mallorys-own")).status == 401
    own = {
        "bind_dn": None,
        "bind_password": None,
        "base_dn": PEOPLE,
        "user_dn": f"uid={{user}},{PEOPLE}",
    }
    (tmp_path / "own").mkdir()
    app = portal.ldap_app(echo_url, tmp_path / "own", own_slapd.url, **own)
    client = await portal.gateway(make_gateway, app)
    headers, _ = await portal.signed_in_headers(client, "bob", "bob-password")
    assert headers["remote-user"] == "bob"


async def test_an_entry_with_several_user_names_names_nobody(
    make_gateway: Any, echo_url: str, tmp_path: Path, own_slapd: Slapd
) -> None:
    """zed's entry also carries uid "alice": his own password must not make him alice (or
    anyone): the sign-in is refused."""
    zed = {"uid": ["alice", "zed"], "cn": "Zed", "sn": "Zed", "userPassword": "zed-password"}
    add(own_slapd, f"uid=zed,{PEOPLE}", ["inetOrgPerson"], zed)
    client = await portal.gateway(make_gateway, portal.ldap_app(echo_url, tmp_path, own_slapd.url))
    assert (await portal_login(client, "zed", "zed-password")).status == 401
