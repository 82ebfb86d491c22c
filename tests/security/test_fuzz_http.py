"""No input is a 500 (issue 15): generated requests to the intercepted login, the challenge page
and both forward-auth endpoints of a real `gateway run` process, 10,200 in all by default.
Deterministic (the same inputs every run); GATEWAY_FUZZ_EXAMPLES=N searches N per door with
fresh inputs. A verify endpoint never says yes to a request without a session."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.demo.legacy import create_legacy_app
from tests.e2e.test_company_policy import Background
from tests.proxy.helpers import write_users_file
from tests.support import GatewayProcess, intercept_app, settings_dict

LONG_RUN = os.environ.get("GATEWAY_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(LONG_RUN) if LONG_RUN else 3400,
    derandomize=not LONG_RUN,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
MEDIA = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=punycode",
        "application/json",
        "multipart/form-data; boundary=X",
        "multipart/form-data",
        "text/plain",
        "",
    ]
)
FIELDS = st.lists(
    st.tuples(st.sampled_from(["username", "password", "csrf", "u", "code", "x"]), PRINTABLE),
    max_size=5,
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    background = Background()
    try:
        legacy = background.serve(create_legacy_app({"alice@example.com": "pw"}))
        apps: dict[str, Any] = {
            "legacy": {**intercept_app(legacy), "hosts": ["legacy.test"]},
            "fa": {
                "mode": "forward_auth",
                "hosts": ["app.test"],
                "identity": "portal",
                "portal": {"users_file": str(write_users_file(tmp))},
            },
        }
        data = settings_dict(tmp / "run", apps, trusted_proxies=["127.0.0.1/32"])
        process = GatewayProcess.run(tmp, data)
        try:
            yield process
        finally:
            process.stop()
    finally:
        background.close()


def send(
    gateway: GatewayProcess, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body or method == "POST":
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def form(fields: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in fields).encode()


@FUZZ
@given(
    media=MEDIA,
    fields=FIELDS,
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
    query=PRINTABLE,
    cookie=PRINTABLE,
)
def test_the_intercepted_login_never_answers_500(
    gateway: GatewayProcess,
    media: str,
    fields: list[tuple[str, str]],
    raw: bytes,
    use_raw: bool,
    query: str,
    cookie: str,
) -> None:
    headers = {"Host": "legacy.test", "Cookie": cookie}
    if media:
        headers["Content-Type"] = media
    target = "/login?" + quote(query, safe="=&;")
    status = send(gateway, "POST", target, headers, raw if use_raw else form(fields))
    assert status < 500, (target, headers, status)


@FUZZ
@given(fields=FIELDS, query=PRINTABLE, cookie=PRINTABLE, media=MEDIA)
def test_the_challenge_never_answers_500(
    gateway: GatewayProcess,
    fields: list[tuple[str, str]],
    query: str,
    cookie: str,
    media: str,
) -> None:
    headers = {"Host": "legacy.test", "Cookie": f"gateway_session={cookie}"}
    if media:
        headers["Content-Type"] = media
    target = "/.gateway/challenge?" + quote(query, safe="=&;")
    status = send(gateway, "POST", target, headers, form(fields))
    assert status < 500, (target, status)


@settings(parent=FUZZ, max_examples=int(LONG_RUN) if LONG_RUN else 3400)
@given(
    endpoint=st.sampled_from(["/.gateway/verify", "/.gateway/auth-request"]),
    uri=PRINTABLE,
    host=st.sampled_from(["app.test", "APP.TEST.", "app.test:443", "", "x"]) | PRINTABLE,
    method=st.sampled_from(["GET", "POST", "HEAD", "DELETE"]) | PRINTABLE,
    forwarded_for=PRINTABLE,
    cookie=PRINTABLE,
)
def test_forward_auth_never_answers_500_nor_yes_without_a_session(
    gateway: GatewayProcess,
    endpoint: str,
    uri: str,
    host: str,
    method: str,
    forwarded_for: str,
    cookie: str,
) -> None:
    headers = {
        "Host": "app.test",
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Host": host,
        "X-Forwarded-Method": method,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": forwarded_for,
        "X-Original-URL": f"https://{host}{uri}",
        "X-Original-Method": method,
        "Cookie": cookie,
    }
    status = send(gateway, "GET", endpoint, headers)
    assert status < 500 and status != 200, (endpoint, headers, status)
