"""In Chromium: the gateway's login page hands the browser to the OpenID provider, the provider's
form signs alice in, and the gateway's own second factor (her first enrolment) comes before the
application."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page
from tests.e2e.flow import ENROL_URL, code_now, enrolment_secret, enter_code
from tests.oidc.support import Provider, oidc_app
from tests.support import DEFAULT_POLICY, GatewayProcess, settings_dict

pytestmark = pytest.mark.browser


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"<!doctype html><title>App</title><h1>Hello {self.headers['Remote-User']}</h1>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def application() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(tmp_path: Path, provider: Provider, application: str) -> Iterator[GatewayProcess]:
    app = oidc_app(application, provider.issuer, tmp_path / "client-secret")
    settings = settings_dict(tmp_path, {"app": app}, {"example.yaml": DEFAULT_POLICY})
    running = GatewayProcess.run(tmp_path, settings)
    yield running
    running.stop()


def test_sign_in_through_the_provider_then_the_gateways_second_factor(
    gateway: GatewayProcess, provider: Provider
) -> None:
    with chromium_page() as page:
        page.goto(gateway.url + "/reports")
        expect(page.get_by_role("heading", name="Test provider")).to_be_visible()
        assert page.url.startswith(provider.issuer + "/interaction/")
        page.get_by_label("Account").fill("alice@example.com")
        with page.expect_navigation(url=ENROL_URL):
            page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
        enter_code(page, code_now(enrolment_secret(page)), "Confirm and continue")
        expect(page.get_by_role("heading", name="Hello alice@example.com")).to_be_visible()
        assert page.url == gateway.url + "/reports"
