"""Access rules scoped by method (issue 15, item 2): a rule for GET covers HEAD, and the
method-override headers and `_method` parameter frameworks honour cannot move a request out of
a method's deny rule."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.method_override import overrides
from gateway.policy.model import Access, AccessRule, Policy
from tests.forward_auth.conftest import forwarded
from tests.proxy.helpers import BYPASS_POLICIES, bypass_app, write_users_file
from tests.security.conftest import forward_auth_app

FORM_TYPE = "application/x-www-form-urlencoded"
RULES = (
    "applications:\n  app:\n"
    "    - paths: ['/reports/**']\n      methods: [GET]\n      access: deny\n"
    "    - paths: ['/items/**']\n      methods: [DELETE, PUT]\n      access: deny\n"
    "    - paths: ['/**']\n      access: bypass\n"
)


@pytest.fixture
async def gateway(make_gateway: Any, upstream_url: str) -> Any:
    return await make_gateway(
        {"app": bypass_app(upstream_url)},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": RULES},
    )


async def test_a_get_rule_covers_head(gateway: Any) -> None:
    assert (await gateway.get("/reports/q3")).status == 403
    assert (await gateway.head("/reports/q3")).status == 403
    assert (await gateway.head("/elsewhere")).status == 200


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/items/1", {"X-HTTP-Method-Override": "DELETE"}),
        ("/items/1", {"X-HTTP-Method": "put"}),
        ("/items/1", {"X-Method-Override": "Delete"}),
        ("/items/1?_method=DELETE", {}),
        ("/items/1?_METHOD=put", {}),
        ("/reports/q3", {"X-HTTP-Method-Override": "GET"}),
        # PHP and WSGI servers read "_" as "-" in header names: the application takes these
        # for X-HTTP-Method-Override too (HTTP_X_HTTP_METHOD_OVERRIDE)
        ("/items/1", {"X_HTTP_Method_Override": "DELETE"}),
        ("/items/1", {"x_http_method": "put"}),
        ("/items/1", {"X-Method_Override": "delete"}),
        # and PHP's $_SERVER turns "." into "_" too (Caddy's php_fastcgi passes the name on)
        ("/items/1", {"X.HTTP.Method.Override": "DELETE"}),
        ("/items/1", {"x-http-method.override": "put"}),
    ],
)
async def test_method_overrides_meet_the_method_rules(
    gateway: Any, target: str, headers: dict[str, str]
) -> None:
    """A POST that the application would take for a DELETE is denied like the DELETE."""
    answer = await gateway.post(target, headers=headers)
    assert answer.status == 403


async def test_every_line_of_a_repeated_override_header_meets_the_method_rules(
    gateway: Any,
) -> None:
    """Two X-HTTP-Method-Override lines: Node joins them, PHP behind some servers and frameworks
    reading the last line take the second. The gateway read only the first, so "GET" then
    "DELETE" passed a DELETE deny rule to an application that deletes."""
    headers = CIMultiDict([("X-HTTP-Method-Override", "GET"), ("X-HTTP-Method-Override", "DELETE")])
    assert (await gateway.post("/items/1", headers=headers)).status == 403
    assert overrides(headers, "") == ("GET", "DELETE")


def test_overrides_are_read_from_headers_and_query() -> None:
    assert overrides({"X-HTTP-Method-Override": "delete, put"}, "a=1&_method=patch") == (
        "DELETE",
        "PUT",
        "PATCH",
    )
    assert overrides({}, "") == ()
    assert overrides({"X_HTTP_METHOD_OVERRIDE": "delete", "Accept": "x"}, "") == ("DELETE",)


def test_the_strictest_method_wins_in_the_model() -> None:
    rule = AccessRule(("/x",), Access.DENY, ("DELETE",))
    policy = Policy(access_rules={"app": (rule,)})
    assert policy.access_for("app", "POST", "/x")[0] is Access.TWO_FACTOR
    assert policy.access_for("app", "POST", "/x", ("DELETE",))[0] is Access.DENY


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("_method=DELETE", "application/x-www-form-urlencoded"),
        ("a=1&_METHOD=put", "application/x-www-form-urlencoded"),
        ("_%6Dethod=delete", "application/x-www-form-urlencoded"),  # Rack decodes the name
        ("_method[]=DELETE", "application/x-www-form-urlencoded"),
        ('{"_method": "DELETE"}', "application/json"),  # Laravel reads JSON input
        (
            '--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
)
async def test_a_method_override_in_the_body_meets_the_method_rules(
    gateway: Any, body: str, content_type: str
) -> None:
    """Rails, Laravel and Symfony take a POST whose body says `_method=DELETE` for a DELETE."""
    answer = await gateway.post("/items/1", data=body, headers={"Content-Type": content_type})
    assert answer.status == 403


async def test_a_body_without_an_override_is_passed_on_whole(gateway: Any) -> None:
    """The body read to look for `_method` reaches the application byte for byte."""
    body = "name=widget&note=" + "x" * 200_000
    answer = await gateway.post(
        "/items/echo", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 200
    seen = await answer.json()
    assert seen["method"] == "POST" and seen["body_length"] == len(body)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        # not read as every framework would read it: it may name any method
        (b"_method=DELETE", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-7"}),
        (
            gzip.compress(b"_method=DELETE", mtime=0),
            {"Content-Type": FORM_TYPE, "Content-Encoding": "gzip"},
        ),
        (b"_method=DELETE", {"Content-Type": "text/plain"}),  # Laravel reads input loosely
        (b"_method=DELETE", {}),  # no Content-Type: Rack reads a POST as a form
        (b'{"_method": "DELETE"}', {"Content-Type": FORM_TYPE + "; a=+json"}),  # Laravel: JSON
        (
            b'-- b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n-- b--\r\n',
            {"Content-Type": "multipart/form-data; boundary= b"},  # PHP keeps the space
        ),
        (
            b"--b--\r\n--b\r\nContent-Disposition: form-data; name=_method\r\n\r\nDELETE\r\n",
            {"Content-Type": "multipart/mixed; boundary=b"},  # Rack reads multipart/mixed
        ),
        (b"_method=DELETE&x=" + b"y" * 300_000, {"Content-Type": FORM_TYPE}),  # too large
    ],
)
async def test_a_body_not_read_strictly_gets_the_strictest_rule(
    gateway: Any, body: bytes, headers: dict[str, str]
) -> None:
    """Where a `_method` could tighten the rule, a body the gateway cannot read exactly as
    every framework would is decided as any method it might name; elsewhere it is streamed."""
    assert (await gateway.post("/items/1", data=body, headers=headers)).status == 403
    if "Content-Encoding" not in headers:  # (the test server inflates request bodies itself)
        assert (await gateway.post("/echo", data=body, headers=headers)).status == 200


async def test_a_method_no_rule_names_is_decided_too(make_gateway: Any, upstream_url: str) -> None:
    """A POST-only bypass: a POST whose body says `_method=DELETE` is taken by Rails for a
    DELETE, which no rule names: it meets the rules scoped to no method (here, a deny)."""
    rules = (
        "applications:\n  app:\n"
        "    - paths: ['/webhooks/**']\n      methods: [POST]\n      access: bypass\n"
        "    - paths: ['/webhooks/**']\n      access: deny\n"
    )
    client = await make_gateway(
        {"app": bypass_app(upstream_url)},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": rules},
    )
    form = {"Content-Type": FORM_TYPE}
    assert (await client.post("/webhooks/in", data="event=push", headers=form)).status == 200
    smuggled = await client.post("/webhooks/in", data="_method=DELETE", headers=form)
    assert smuggled.status == 403
    assert (await client.post("/webhooks/in?_method=PATCH")).status == 403


async def test_forward_auth_cannot_see_the_body_so_the_strictest_rule_holds(
    make_gateway: Any, tmp_path: Path
) -> None:
    """The front proxy sends no body to the verify endpoint: a POST where a `_method` could
    tighten the rule is decided as any method it might name, whatever its Content-Type."""
    client = await make_gateway(
        {"app": forward_auth_app(write_users_file(tmp_path))},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": RULES},
        trusted_proxies=["127.0.0.1/32"],
    )

    async def verdict(uri: str, content_type: str | None) -> int:
        headers = forwarded(uri, "POST")
        if content_type is not None:
            headers["Content-Type"] = content_type
        answer = await client.get("/.gateway/verify", headers=headers, allow_redirects=False)
        return int(answer.status)

    assert await verdict("/items/1", "application/x-www-form-urlencoded") == 403
    assert await verdict("/items/1", "multipart/form-data; boundary=x") == 403
    assert await verdict("/items/1", None) == 403
    assert await verdict("/items/1", "application/octet-stream") == 403  # read loosely too
    assert await verdict("/elsewhere", "application/x-www-form-urlencoded") == 200


async def test_forward_auth_reads_every_spelling_of_the_override_headers(
    make_gateway: Any, tmp_path: Path
) -> None:
    """The front proxy (Caddy, Traefik; nginx only with underscores_in_headers) passes
    X_HTTP_Method_Override on, and PHP reads it as X-HTTP-Method-Override."""
    client = await make_gateway(
        {"app": forward_auth_app(write_users_file(tmp_path))},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": RULES},
        trusted_proxies=["127.0.0.1/32"],
    )
    for spelling in ("X_HTTP_Method_Override", "X.HTTP.Method.Override"):
        headers = forwarded("/items/1", "GET")
        headers[spelling] = "DELETE"
        answer = await client.get("/.gateway/verify", headers=headers, allow_redirects=False)
        assert answer.status == 403, spelling
