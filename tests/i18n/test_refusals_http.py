"""Refusals a browser is shown, in the person's language down to their reason: the 400 page of a
malformed address (proxy mode) or of a front proxy's unclear description (forward auth, which
the proxy passes to the browser as it is), and nginx auth_request's 401 body. The reasons stay
English in str(), for the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from multidict import CIMultiDict
from yarl import URL

from gateway.handlers.entry.forward_auth import BadOriginal, original_request
from gateway.i18n import speaking
from gateway.identity.portal import hash_password
from gateway.paths import BadPath, normalise_path
from tests.forward_auth.conftest import COMPANY, forwarded

TRUSTED = ["127.0.0.1/32"]


@pytest.fixture
async def forward_auth(make_gateway: Any, tmp_path: Path) -> Any:
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"users": {"carol@example.com": {"password": hash_password(
        "carol-password")}}}))  # fmt: skip
    return await make_gateway(
        {"app": {"mode": "forward_auth", "hosts": ["app.test"], "identity": "portal",
                 "portal": {"users_file": str(users)}}},
        {"example.yaml": COMPANY},
        trusted_proxies=TRUSTED,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("language", "headers", "words"),
    [
        (
            "de",
            forwarded("/public/a%00b"),
            "Der vorgeschaltete Proxy hat die Anfrage nicht eindeutig beschrieben: der "
            "ursprüngliche Pfad ist fehlerhaft: der Pfad enthält das kodierte Zeichen '%00'.",
        ),
        (
            "fr",
            {**forwarded("/public/x"), "X-Forwarded-Proto": "gopher"},
            "X-Forwarded-Proto n\u2019est ni http ni https.",
        ),
        (
            "es",
            {**forwarded("/public/x"), "X-Original-Method": "POST"},
            "X-Forwarded-Method y X-Original-Method no coinciden.",
        ),
        (
            "de",
            {"X-Forwarded-Uri": "/public/x", "X-Forwarded-Host": "app.test"},
            "er hat weder X-Forwarded-Method noch X-Original-Method gesendet.",
        ),
    ],
)
async def test_an_unclear_description_is_refused_in_the_persons_language(
    forward_auth: Any, language: str, headers: dict[str, str], words: str
) -> None:
    answer = await forward_auth.get(
        "/.gateway/verify", headers={**headers, "Accept-Language": language}
    )
    html = await answer.text()
    assert answer.status == 400 and f'<html lang="{language}">' in html
    assert words in html.replace("&#39;", "'")


async def test_nginx_hears_sign_in_needed_in_the_persons_language(forward_auth: Any) -> None:
    answer = await forward_auth.get(
        "/.gateway/auth-request",
        headers={**forwarded("/private", style="nginx"), "Accept-Language": "fr"},
    )
    assert answer.status == 401 and answer.headers["X-Gateway-Location"]
    assert await answer.text() == "Connexion nécessaire.\n"


async def test_a_malformed_address_is_refused_in_the_persons_language(
    make_gateway: Any, upstream_url: str
) -> None:
    client = await make_gateway(
        {"app": {"upstream": upstream_url, "hosts": ["*"], "identity": "header",
                 "header": {"user_header": "X-SSO-User"}}},
        trusted_proxies=TRUSTED,
    )  # fmt: skip
    answer = await client.get(URL("/a%5cb", encoded=True), headers={"Accept-Language": "es"})
    html = await answer.text()
    assert answer.status == 400 and '<html lang="es">' in html
    assert (
        "La dirección de esta solicitud no es válida: la ruta contiene el carácter codificado "
        "'%5c'." in html.replace("&#39;", "'")
    )


def test_the_reasons_stay_english_for_the_log() -> None:
    with speaking("de"), pytest.raises(BadOriginal) as refused:
        original_request(CIMultiDict(forwarded("/public/a%00b")))
    assert str(refused.value) == (
        "the original path is malformed: the path contains the encoded character '%00'"
    )
    with speaking("fr"), pytest.raises(BadPath) as bad:
        normalise_path("/a/..;x/b")
    assert str(bad.value) == "a dot segment carries path parameters"
    assert bad.value.words() == "a dot segment carries path parameters"  # outside: English
    with speaking("fr"):
        assert bad.value.words() == "un segment point porte des paramètres de chemin"
