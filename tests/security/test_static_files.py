"""The gateway's own static files: only the files it ships, by exact name, never a 500 (the
outside attack run got a KeyError and "file name too long" from traversal and long names)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.proxy.helpers import raw_request
from tests.support import intercept_app


@pytest.fixture
async def gateway(make_gateway: Any, legacy_server: Any) -> Any:
    return await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})


@pytest.mark.parametrize(
    "target",
    [
        "/.gateway/static/../../pyproject.toml",
        "/.gateway/static/%2e%2e/%2e%2e/pyproject.toml",
        "/.gateway/static/..%2f..%2fpyproject.toml",
        "/.gateway/static/" + "a" * 7000,
        "/.gateway/static/",
        "/.gateway/static/gateway.css/",
        "/.gateway/static/GATEWAY.CSS",
        "/.gateway/static/%00",
        "/.gateway/static/../templates/error.html",
    ],
)
async def test_anything_but_a_shipped_file_is_a_clean_refusal(gateway: Any, target: str) -> None:
    """Traversal, encoded dots, a 7,000-character name, a directory: a 4xx page, never a file
    outside the static directory and never a 500."""
    answer = await raw_request(gateway.server.host, gateway.server.port, target)
    assert 400 <= answer.status < 500, (target[:60], answer.status)
    assert b"[project]" not in answer.body and b"{%" not in answer.body


async def test_the_shipped_files_are_served(gateway: Any) -> None:
    """The stylesheet and the passkey script, with an ETag that a revalidation honours."""
    css = await gateway.get("/.gateway/static/gateway.css")
    assert css.status == 200 and css.content_type == "text/css"
    script = await gateway.get("/.gateway/static/passkeys.js")
    assert script.status == 200 and "javascript" in script.content_type
    again = await gateway.get(
        "/.gateway/static/gateway.css", headers={"If-None-Match": css.headers["ETag"]}
    )
    assert again.status == 304
    head = await gateway.head("/.gateway/static/gateway.css")
    assert head.status == 200
