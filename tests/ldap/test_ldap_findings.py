"""Second review of the directory sign-in, each finding a test that failed before its fix:
wrong passwords counted under the person the directory names, not under each spelling a user
filter accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ldap import test_ldap_portal as portal
from tests.ldap.slapd import Slapd
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
