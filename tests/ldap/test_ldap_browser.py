"""In Chromium, through `gateway run` in its own process: the gateway's login page checks the
password with the suite's slapd, then the gateway's own second factor, then the application,
which receives the directory's user and groups."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import chromium_page
from tests.e2e.flow import ENROL_URL, RECOVERY_URL, code_now, enrolment_secret, enter_code
from tests.ldap.slapd import Slapd
from tests.ldap.test_ldap_portal import COMPANY, ldap_app
from tests.support import GatewayProcess, settings_dict

pytestmark = pytest.mark.browser


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page(timeout=10_000) as opened:
        yield opened


def test_sign_in_through_slapd_then_the_second_factor(
    tmp_path: Path, slapd: Slapd, echo_url: str, page: Page
) -> None:
    app = ldap_app(echo_url, tmp_path, slapd.url, start_tls=True, ca_file=str(slapd.ca_file))
    settings = settings_dict(tmp_path, {"app": app}, {"directory.yaml": COMPANY})
    gateway = GatewayProcess.run(tmp_path, settings)
    try:
        page.goto(f"{gateway.url}/report")
        expect(page.get_by_label("User name or email")).to_be_visible()
        page.get_by_label("User name or email").fill("alice")
        page.get_by_label("Password").fill("not-alices-password")
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_contain_text("The user name or password is not right")

        page.get_by_label("Password").fill("alice-password")
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(ENROL_URL)
        expect(page.get_by_text("Admins of the Directory").first).to_be_visible()
        enter_code(page, code_now(enrolment_secret(page)), "Confirm and continue")
        if RECOVERY_URL.search(page.url):
            with page.expect_navigation():
                page.locator("form:has(input[name=continue]) button[type=submit]").click()
        seen = json.loads(page.locator("body").inner_text())
        assert page.url.endswith("/report")
        assert seen["remote-user"] == "alice"
        assert seen["remote-groups"] == "staff,admins"
    finally:
        gateway.stop()
