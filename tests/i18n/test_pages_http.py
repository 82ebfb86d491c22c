"""Pages over HTTP in the person's language: Accept-Language de gives German, the switcher's
cookie wins over the header, a company's `language` applies when the browser names none the
gateway speaks, and a bad cookie or header falls back to English, never an error page."""

from __future__ import annotations

import re
from typing import Any

import pytest

SSO = "X-SSO-User"
USER = "carol@acme.example"
ACME = """
company: Acme Corporation
members:
  domains: [acme.example]
enforce_2fa: true
"""


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found is not None
    return found.group(1)


async def enrol_page(client: Any, **headers: str) -> tuple[int, str]:
    first = await client.get("/", headers={SSO: USER, **headers}, allow_redirects=False)
    assert first.status == 303
    page = await client.get(first.headers["Location"], headers={SSO: USER, **headers})
    return page.status, await page.text()


@pytest.fixture
async def client(make_gateway: Any, upstream_url: str) -> Any:
    return await make_gateway(
        {"app": {"upstream": upstream_url, "hosts": ["*"], "identity": "header",
                 "header": {"user_header": SSO}}},
        {"acme.yaml": ACME},
        trusted_proxies=["127.0.0.1/32"],
    )  # fmt: skip


async def test_english_by_default(client: Any) -> None:
    status, html = await enrol_page(client)
    assert status == 200 and lang_of(html) == "en"
    assert "Set up two-step" in html and "Two-step sign-in protects this site." in html


async def test_accept_language_de_gives_a_german_page(client: Any) -> None:
    status, html = await enrol_page(client, **{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert status == 200 and lang_of(html) == "de"
    assert "Zwei-Schritt-" in html and "Die Zwei-Schritt-Anmeldung schützt diese Website." in html
    assert "Geben Sie den Code ein, den die App anzeigt" in html


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", "La validation en deux étapes protège ce site."),
        ("es", "La verificación en dos pasos protege este sitio."),
    ],
)
async def test_french_and_spanish(client: Any, language: str, words: str) -> None:
    status, html = await enrol_page(client, **{"Accept-Language": language})
    assert status == 200 and lang_of(html) == language and words in html


async def test_the_switcher_sets_a_cookie_that_wins_over_the_header(client: Any) -> None:
    status, html = await enrol_page(client, **{"Accept-Language": "de"})
    link = re.search(r'href="(/\.gateway/language\?lang=es[^"]*)"', html)
    assert link is not None
    switched = await client.get(
        link.group(1).replace("&amp;", "&"), headers={SSO: USER}, allow_redirects=False
    )
    assert switched.status == 303
    assert switched.headers["Location"].startswith("/.gateway/enrol")
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith("gateway_lang=es;") and "SameSite=Lax" in cookie
    status, html = await enrol_page(client, **{"Accept-Language": "de"})
    assert status == 200 and lang_of(html) == "es"
    assert 'lang="es" hreflang="es" aria-current="true"' in html


async def test_the_switcher_goes_only_to_a_page_of_this_site(client: Any) -> None:
    answer = await client.get(
        "/.gateway/language?lang=fr&rd=https://evil.example/", allow_redirects=False
    )
    assert answer.status == 303 and answer.headers["Location"] == "/"
    unknown = await client.get("/.gateway/language?lang=xx&rd=/", allow_redirects=False)
    assert unknown.status == 303 and "gateway_lang=;" in unknown.headers["Set-Cookie"]


async def test_over_tls_the_choice_is_a_host_cookie_like_the_gateways_others(client: Any) -> None:
    """Over TLS the switcher's cookie is `__Host-gateway_lang`, Secure, like the session's: a
    sibling host cannot plant a plain `gateway_lang` to choose the pages' language, since only
    the prefixed one is read there. The plain name an earlier version set is expired."""
    tls = {"X-Forwarded-Proto": "https"}  # as the trusted proxy in front says
    switched = await client.get(
        "/.gateway/language?lang=de&rd=/",
        headers={**tls, "Cookie": "gateway_lang=fr"},
        allow_redirects=False,
    )
    client.session.cookie_jar.clear()
    first, old = switched.headers.getall("Set-Cookie")
    assert first.startswith("__Host-gateway_lang=de; Path=/;")
    assert "; Secure" in first and "Domain" not in first and "SameSite=Lax" in first
    assert old.startswith("gateway_lang=;") and "Max-Age=0" in old
    _, html = await enrol_page(client, Cookie="__Host-gateway_lang=de", **tls)
    assert lang_of(html) == "de"
    _, html = await enrol_page(client, Cookie="gateway_lang=de", **tls)
    assert lang_of(html) == "en"
    cleared = await client.get(
        "/.gateway/language?lang=xx&rd=/", headers=tls, allow_redirects=False
    )
    assert cleared.headers.getall("Set-Cookie") == [
        "__Host-gateway_lang=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly; Secure"
    ]
    plain = await client.get("/.gateway/language?lang=de&rd=/", allow_redirects=False)
    assert plain.headers.getall("Set-Cookie") == [
        f"gateway_lang=de; Path=/; Max-Age={365 * 86400}; SameSite=Lax; HttpOnly"
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Cookie": "gateway_lang=klingon"},
        {"Cookie": "gateway_lang=%00%FF"},
        {"Accept-Language": "tlh;q=abc,,;;,*;q=2"},
        {"Accept-Language": "x" * 4000},
    ],
)
async def test_a_bad_cookie_or_header_falls_back_to_english(
    client: Any, headers: dict[str, str]
) -> None:
    status, html = await enrol_page(client, **headers)
    assert status == 200 and lang_of(html) == "en"


async def test_an_error_page_is_translated(client: Any) -> None:
    await client.get("/", headers={SSO: USER}, allow_redirects=False)
    page = await client.get(
        "/.gateway/enrol?method=carrier-pigeon", headers={SSO: USER, "Accept-Language": "de"}
    )
    html = await page.text()
    assert page.status == 404 and lang_of(html) == "de"
    assert "Zur Startseite" in html


async def test_a_company_language_applies_when_the_browser_names_none_we_speak(
    make_gateway: Any, upstream_url: str
) -> None:
    client = await make_gateway(
        {"app": {"upstream": upstream_url, "hosts": ["*"], "identity": "header",
                 "header": {"user_header": SSO}}},
        {"acme.yaml": ACME + "language: fr\n"},
        trusted_proxies=["127.0.0.1/32"],
    )  # fmt: skip
    status, html = await enrol_page(client)
    assert status == 200 and lang_of(html) == "fr"
    _, html = await enrol_page(client, **{"Accept-Language": "ja, it;q=0.5"})
    assert lang_of(html) == "fr"
    _, html = await enrol_page(client, **{"Accept-Language": "es"})
    assert lang_of(html) == "es"
    _, html = await enrol_page(client, Cookie="gateway_lang=en")
    assert lang_of(html) == "en"


async def test_the_language_cookie_is_the_gateways_own_not_the_applications(
    make_gateway: Any, upstream_url: str
) -> None:
    """Like the gateway's other cookies, the switcher's (either spelling) never reaches the
    application: it is not the application's to read or to log."""
    from tests.proxy.helpers import BYPASS_POLICIES, bypass_app

    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    sent = {"Cookie": "gateway_lang=fr; __Host-gateway_lang=de; app_pref=dark"}
    answer = await client.get("/page", headers=sent)
    assert answer.status == 200
    seen = await answer.json()
    assert [value for name, value in seen["headers"] if name.lower() == "cookie"] == [
        "app_pref=dark"
    ]
