"""Form details that decide whether a page can be used on a phone and by keyboard (issue 17,
findings 3 and 8): the enrolment page opens on its QR code, not scrolled to the code field;
fields are at least 44 px tall with a 16 px font (iOS zooms into smaller ones); buttons do not
touch; the focus ring has at least 3:1 contrast; errors follow the GOV.UK pattern (an error
summary at the top linked to the field, "Error: " in the title, the message above the field)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import SMALL_PHONE
from tests.e2e.flow import ALICE, ENROL_URL, app_sign_in, enter_code
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser

BOB = ("bob@globex.example", "globex-demo-1")
TALL_ENOUGH = 44  # px: the smallest target WCAG 2.5.5 and the platforms' guides ask for
IOS_NO_ZOOM = 16  # px: iOS Safari zooms into a field whose text is smaller
WHITE = (255, 255, 255)


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: tuple[int, ...], other: tuple[int, ...]) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb(css: str) -> tuple[int, ...]:
    found = re.findall(r"[\d.]+", css)
    assert len(found) >= 3, css
    return tuple(int(float(v)) for v in found[:3])


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return dict(found)


def test_the_enrolment_page_opens_on_its_qr_code(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    """At 360 px wide the page is not scrolled past the QR code to the code field (autofocus
    there moved it 653 px down, and a phone raises its keyboard over the code)."""
    page.set_viewport_size(SMALL_PHONE)
    app_sign_in(page, demo.url, *ALICE)
    expect(page).to_have_url(ENROL_URL)
    expect(page.locator(".qr svg")).to_be_visible()
    assert page.evaluate("window.scrollY") == 0
    qr = box(page, ".qr svg")
    assert qr["y"] < SMALL_PHONE["height"], qr
    assert page.evaluate("document.activeElement.id") != "code"


def test_fields_are_tall_enough_and_large_enough_not_to_zoom(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    app_sign_in(page, demo.url, *BOB)
    expect(page).to_have_url(ENROL_URL)
    for selector in ("#code", "button[type=submit]"):
        assert box(page, selector)["height"] >= TALL_ENOUGH, selector
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Text message (SMS)"
    ).click()
    phone = page.get_by_label("Mobile phone number")
    expect(phone).to_be_visible()
    assert box(page, "#phone")["height"] >= TALL_ENOUGH
    size = phone.evaluate("element => parseFloat(getComputedStyle(element).fontSize)")
    assert size >= IOS_NO_ZOOM


def test_buttons_do_not_touch(
    demo: GatewayProcess, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    """ "Send again" and "Use a different number" on the code page have space between them."""
    app_sign_in(page, demo.url, *BOB)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Text message (SMS)"
    ).click()
    page.get_by_label("Mobile phone number").fill("+44 7400 123456")
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    again = page.get_by_role("button", name="Send again").bounding_box()
    other = page.get_by_role("button", name="Use a different number").bounding_box()
    assert again is not None and other is not None
    upper, lower = sorted((again, other), key=lambda b: b["y"])
    gap = lower["y"] - (upper["y"] + upper["height"])
    side = other["x"] - (again["x"] + again["width"])
    assert gap >= 8 or side >= 8, (again, other)


def test_the_focus_ring_stands_out(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    """At least 3:1 against the white page around it (WCAG 2.4.11): #ffbf47 on white was 1.64:1."""
    app_sign_in(page, demo.url, *ALICE)
    expect(page).to_have_url(ENROL_URL)
    for selector in ("#code", "button[type=submit]", "main a"):
        element = page.locator(selector).first
        element.focus()
        style = element.evaluate(
            "element => { const s = getComputedStyle(element);"
            " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
        )
        assert style[0] != "none" and float(style[1].rstrip("px")) >= 2, (selector, style)
        assert contrast(rgb(style[2]), WHITE) >= 3, (selector, style)


def test_errors_follow_the_gov_uk_pattern(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    """A wrong code: "Error: " in the title, a summary at the top of the page whose link leads
    to the field, the message between the label and the field, and tied to it."""
    app_sign_in(page, demo.url, *ALICE)
    expect(page).to_have_url(ENROL_URL)
    enter_code(page, "000000", "Confirm and continue")
    assert page.title().startswith("Error: ")
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    assert page.evaluate(
        "document.querySelector('main').firstElementChild.classList.contains('error-summary')"
    )
    expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "code"
    order = page.evaluate(
        "document.getElementById('code-error').compareDocumentPosition("
        "document.getElementById('code')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert order, "the message comes before the field"
    expect(page.locator("#code")).to_have_attribute("aria-describedby", "code-error")
