"""Choosing a second-factor method: what a password alone may and may not do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from tests.support import csrf_from_page, portal_app, portal_login

UPSTREAM = "http://127.0.0.1:9"  # never reached: every test stops at the gateway's pages


def policy(allowed: str) -> dict[str, str]:
    return {
        "a.yaml": f"company: A\nmembers:\n  domains: [example.com]\nenforce_2fa: true\n"
        f"methods:\n  allowed: [{allowed}]\n"
    }


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  carol@example.com:\n    password: '{hash_password('pw')}'\n")
    return path


@pytest.mark.parametrize(
    ("enrolled", "allowed"),
    [
        ("totp", "sms, voice, email"),  # the policy no longer allows the enrolled method
        ("sms", "totp, sms"),  # the method is allowed, but no SMS sender is configured
    ],
)
async def test_a_password_alone_never_enrols_a_replacement_factor(
    make_gateway: Any, users: Path, enrolled: str, allowed: str
) -> None:
    """A user whose enrolled factor is no longer offered is stopped with a plain page; the
    enrolment pages stay shut, so whoever has only the password cannot add their own factor."""
    client = await make_gateway({"app": portal_app(UPSTREAM, users)}, policies=policy(allowed))
    await client.app[RUNTIME].store.put_enrolment("carol@example.com", enrolled, {"created": 1.0})
    login = await portal_login(client, "carol@example.com", "pw")
    assert login.headers["Location"].startswith("/.gateway/challenge")
    challenge = await client.get(login.headers["Location"])
    assert challenge.status == 403
    assert "no longer offered" in await challenge.text()
    for method in ("", "&method=totp", "&method=sms"):
        page = await client.get(f"/.gateway/enrol?rd=%2F{method}")
        assert page.status == 403, method
    token = csrf_from_page(await (await client.get("/.gateway/logout")).text())
    posted = await client.post(
        "/.gateway/enrol?rd=%2F&method=totp", data={"csrf_token": token, "code": "123456"}
    )
    assert posted.status == 403
    assert await client.app[RUNTIME].store.list_methods("carol@example.com") == [enrolled]


async def test_an_enrolled_user_is_sent_from_enrolment_to_the_challenge(
    make_gateway: Any, users: Path
) -> None:
    client = await make_gateway({"app": portal_app(UPSTREAM, users)}, policies=policy("totp"))
    await client.app[RUNTIME].store.put_enrolment("carol@example.com", "totp", {"created": 1.0})
    await portal_login(client, "carol@example.com", "pw")
    page = await client.get("/.gateway/enrol?rd=%2F", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/.gateway/challenge")
