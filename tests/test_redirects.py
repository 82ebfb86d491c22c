"""The redirect check: only relative paths on the same application pass (PRODUCT.md section 8)."""

import pytest

from gateway.redirects import is_safe_redirect, safe_redirect

GOOD = ["/", "/invoices", "/a/b?c=d&e=f", "/search?q=%20x", "/caf%C3%A9", "/a#frag", "/a/./b"]
BAD = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "%2f%2fevil.example",
    "/%2f%2fevil.example",
    "/%5cevil.example",
    "/%2F%2Fevil.example",
    "/%252f%252fevil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "evil.example",
    "/\tevil",
    "/\nevil",
    "/%0d%0aSet-Cookie:x=y",
    "/%09/evil.example",
    "/ evil",
    "",
    "/\x00",
    "/é",
    "//\\evil",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", GOOD)
def test_relative_paths_pass(target: str) -> None:
    assert is_safe_redirect(target)


@pytest.mark.parametrize("target", BAD)
def test_everything_else_is_refused(target: str) -> None:
    assert not is_safe_redirect(target)
    assert safe_redirect(target) == "/"


def test_missing_target_falls_back() -> None:
    assert safe_redirect(None) == "/"
    assert safe_redirect(None, "/home") == "/home"


def test_a_target_still_encoded_after_every_decoding_round_is_refused() -> None:
    """"/" and "//evil.example" percent-encoded four times: three rounds of decoding leave it
    encoded still, and a fourth (by whatever reads it next) would leave the site."""
    from urllib.parse import quote

    from gateway.redirects import is_safe_redirect

    target = "//evil.example"
    for _ in range(4):
        target = quote(target, safe="")
    assert not is_safe_redirect("/" + target)
    assert is_safe_redirect("/a%2520b")  # encoded twice, ends plain: a file name with a space
