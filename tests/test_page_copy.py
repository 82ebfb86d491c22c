"""The words of the pages, rendered from their templates as the browser gets them (issue 17,
finding 10, and the error pattern): no words run together, no missing word, and "Error: " and
the error summary exactly when a page carries an error."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from gateway.pages import DEFAULT_BRANDING, Pages

PAGES = Pages()


def text_of(name: str, **context: Any) -> str:
    """The page's visible words, one space between them (markup dropped)."""
    html = PAGES.env.get_template(name).render(
        branding=DEFAULT_BRANDING, style_nonce="n", **context
    )
    body = html.split("<body>", 1)[1]
    return " ".join(unescape(re.sub(r"<[^>]+>", "", body)).split())


def code_page(**overrides: Any) -> dict[str, Any]:
    page = {
        "method": "voice",
        "sent": False,
        "kind": "enrol",
        "to": "the number ending in 3456",
        "user": "bob@globex.example",
        "heading": "Enter the code we read out",
        "send_label": "Call me with a code",
        "action": "/.gateway/enrol",
        "csrf_field": "csrf_token",
        "csrf_token": "t",
        "cooldown": 30,
        "minutes": 10,
        "error": None,
        "problem": None,
        "rd": "/",
        "other_ways": [],
        "shared_login": None,
        "shared_account": False,
    }
    return page | overrides


def test_a_phone_call_is_announced_with_spaces_between_words() -> None:
    """ "We will call the number ending in 3456 and read out": not "3456and"."""
    assert "ending in 3456 and read out a 6-digit code" in text_of(
        "code_verify.html", **code_page()
    )


def test_the_enforcement_date_is_set_apart() -> None:
    page = text_of(
        "admin_enforce.html",
        org=type("Org", (), {"name": "Acme Corporation"})(),
        enforced=True,
        enforced_since=1_800_000_000.0,
        shown=lambda at: "15 January 2027",
        back="/.gateway/admin",
        action="/x",
        csrf_field="csrf_token",
        csrf_token="t",
        error=None,
    )
    assert "Acme Corporation (since 15 January 2027)" in page


@pytest.mark.parametrize("error", [None, "That code is not right."])
def test_error_in_the_title_and_a_summary_only_with_an_error(error: str | None) -> None:
    html = PAGES.env.get_template("code_verify.html").render(
        branding=DEFAULT_BRANDING, style_nonce="n", **code_page(sent=True, error=error)
    )
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    assert title is not None
    assert title.group(1).startswith("Error: ") == bool(error)
    assert ("error-summary" in html) == bool(error)
    if error:
        assert '<a href="#code">That code is not right.</a>' in html


def test_an_error_page_has_no_error_summary() -> None:
    page = text_of("error.html", title="Page not found", message="m", next_step="n", link="/")
    assert "There is a problem" not in page


@pytest.mark.parametrize("sent_error", [None, "That code is not right."])
def test_the_code_field_keeps_each_attribute_apart(sent_error: str | None) -> None:
    """trim_blocks and lstrip_blocks eat the line break after a block tag: an attribute after
    one must not run into the next ("autofocusaria-invalid")."""
    from html.parser import HTMLParser

    found: dict[str, str | None] = {}

    class Field(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "input" and ("id", "code") in attrs:
                found.update(attrs)

    for name in ("code_verify.html", "enrol.html"):
        found.clear()
        context = code_page(sent=True, error=sent_error)
        if name == "enrol.html":
            context |= {"qr_svg": "", "secret": "S", "secret_label": "S", "otpauth_uri": "o"}
            context |= {"deferral": None}
        Field().feed(
            PAGES.env.get_template(name).render(
                branding=DEFAULT_BRANDING, style_nonce="n", **context
            )
        )
        assert found.get("required") is None and "required" in found, (name, found)
        assert ("aria-invalid" in found) == bool(sent_error), (name, found)
        assert ("autofocus" in found) == (name == "code_verify.html"), (name, found)


def test_a_wrong_called_code_does_not_send_people_to_a_message() -> None:
    """A phone call leaves no message to check (issue 17, finding 10)."""
    from gateway.handlers.signin.codes import WRONG_CODE, wrong_code_text

    assert "message" not in wrong_code_text("voice") and "call" in wrong_code_text("voice")
    assert wrong_code_text("sms") == wrong_code_text("email") == WRONG_CODE
