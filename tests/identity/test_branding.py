"""The company's brand stays on every page of its people's sign-in, error and wait pages
included (issue 17, finding 5): Acme's "Acme" did not become the gateway's own "Sign-in
gateway" mid-flow, which looks like another site."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sessions import MAX_FAILURES
from tests.support import csrf_from_page

SSO = "X-SSO-User"
USER = "carol@acme.example"
ACME = """
company: Acme Corporation
members:
  domains: [acme.example]
enforce_2fa: true
branding:
  name: Acme
  colour: "#aa3300"
"""


def brand_of(html: str) -> str:
    start = html.index('<p class="brand">')
    return html[start : html.index("</p>", start)]


@pytest.fixture
async def client(make_gateway: Any, upstream_url: str) -> Any:
    app = {
        "upstream": upstream_url,
        "hosts": ["*"],
        "identity": "header",
        "header": {"user_header": SSO},
    }
    return await make_gateway({"app": app}, {"acme.yaml": ACME}, trusted_proxies=["127.0.0.1/32"])


async def test_an_error_page_mid_flow_keeps_the_brand(client: Any) -> None:
    first = await client.get("/", headers={SSO: USER}, allow_redirects=False)
    assert first.status == 303
    page = await client.get("/.gateway/enrol?method=carrier-pigeon", headers={SSO: USER})
    assert page.status == 404
    html = await page.text()
    assert "Acme" in brand_of(html) and "Sign-in gateway" not in html
    assert "--brand: #aa3300" in html


async def test_the_too_many_answers_page_keeps_the_brand(client: Any) -> None:
    await client.get("/", headers={SSO: USER}, allow_redirects=False)
    for _ in range(MAX_FAILURES):
        form = await client.get("/.gateway/enrol", headers={SSO: USER})
        token = csrf_from_page(await form.text())
        answer = await client.post(
            "/.gateway/enrol",
            data={"csrf_token": token, "code": "000000"},
            headers={SSO: USER},
            allow_redirects=False,
        )
    assert answer.status == 429
    html = await answer.text()
    assert "Acme" in brand_of(html) and "Sign-in gateway" not in html


async def test_the_logo_and_favicon_the_policy_gives_are_on_every_page(
    make_gateway: Any, upstream_url: str
) -> None:
    """branding.logo in the header and branding.favicon as the tab's icon, on a sign-in page
    and an error page alike; a favicon that is neither a path nor an https URL is refused."""
    policy = ACME.replace(
        "  name: Acme\n",
        "  name: Acme\n  logo: https://cdn.acme.example/logo.svg\n"
        "  favicon: https://cdn.acme.example/favicon.ico\n",
    )
    app = {"upstream": upstream_url, "hosts": ["*"], "identity": "header"}
    app["header"] = {"user_header": SSO}
    client = await make_gateway(
        {"app": app}, {"acme.yaml": policy}, trusted_proxies=["127.0.0.1/32"]
    )
    await client.get("/", headers={SSO: USER}, allow_redirects=False)
    for path, status in (("/.gateway/enrol", 200), ("/.gateway/enrol?method=pigeon", 404)):
        page = await client.get(path, headers={SSO: USER})
        html = await page.text()
        assert page.status == status
        assert '<link rel="icon" href="https://cdn.acme.example/favicon.ico">' in html
        assert '<img src="https://cdn.acme.example/logo.svg"' in brand_of(html)


def test_a_favicon_must_be_a_path_or_an_https_url() -> None:
    from gateway.policy.model import Branding

    with pytest.raises(ValueError, match="favicon"):
        Branding("Acme", favicon="javascript:alert(1)")
    assert Branding("Acme", favicon="/favicon.ico").favicon == "/favicon.ico"
