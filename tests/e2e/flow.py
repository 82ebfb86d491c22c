"""Steps a person takes in the browser, shared by the e2e tests."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pyotp
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from gateway.demo.run import POLICIES

ALICE = ("alice@acme.example", "acme-demo-1")
CODE_LABEL = "6-digit code"
ENROL_URL = re.compile(r"/\.gateway/enrol(\?|$)")
CHALLENGE_URL = re.compile(r"/\.gateway/challenge(\?|$)")
RECOVERY_URL = re.compile(r"/\.gateway/recovery(\?|$)")


def demo_policies(edited: str, added: str) -> dict[str, str]:
    """The demo's policy files by name, for a gateway of a test's own, with `added` put at the
    end of the file `edited`."""
    files = {path.name: path.read_text() for path in POLICIES.glob("*.yaml")}
    files[edited] = files[edited].rstrip("\n") + "\n" + added
    return files


def app_sign_in(page: Page, base: str, user: str, password: str) -> None:
    """Open the application, land on its own login form, and submit the password."""
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login")
    expect(page.get_by_role("heading", name="Sign in to Legacy Billing")).to_be_visible()
    page.get_by_label("Email").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def cookies(context: BrowserContext) -> dict[str, dict[str, object]]:
    """The context's cookies by name."""
    return {str(c["name"]): dict(c) for c in context.cookies()}


def code_now(secret: str, steps_ahead: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead))


def wrong_code(secret: str) -> str:
    """A code that is right for no step the gateway could accept now (nor a little later)."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + 30 * k) for k in range(-2, 4)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


def enter_code(page: Page, code: str, button: str) -> None:
    """Type a code and submit it; returns once the answer page has loaded."""
    page.get_by_label(CODE_LABEL).fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def expect_code_refused(page: Page, message: str) -> None:
    """The page says why the code was refused, as an alert tied to the code field."""
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(message)
    expect(page.get_by_label(CODE_LABEL)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(CODE_LABEL)).to_have_attribute("aria-describedby", "code-error")


def enrolment_secret(page: Page) -> str:
    secret = page.locator("code#secret").get_attribute("data-secret")
    assert secret, "the enrolment page shows no secret"
    return secret


def enrol(page: Page) -> tuple[str, str]:
    """On the enrolment page: add the key to an 'authenticator' and confirm its current code.
    Returns the secret and the code used (a code is accepted once)."""
    expect(page).to_have_url(ENROL_URL)
    secret = enrolment_secret(page)
    code = code_now(secret)
    enter_code(page, code, "Confirm and continue")
    return secret, code


def expect_application_home(page: Page, base: str, user: str) -> None:
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("heading", name=f"Welcome, {user}")).to_be_visible()


def past_recovery_codes(page: Page) -> None:
    """After a first enrolment where the company offers recovery codes (every company of the
    demo does): the codes, shown once, then on with the page's "continue" button."""
    expect(page).to_have_url(RECOVERY_URL)
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    with page.expect_navigation():
        page.locator("form:has(input[name=continue]) button[type=submit]").click()


def sign_in_and_enrol(page: Page, base: str, user: str, password: str) -> tuple[str, str]:
    app_sign_in(page, base, user, password)
    secret, code = enrol(page)
    if RECOVERY_URL.search(page.url):
        past_recovery_codes(page)
    expect_application_home(page, base, user)
    return secret, code


def axe_violations(page: Page) -> dict[str, str]:
    """axe-core's violations on the current page by rule id, each with its report ({} when there
    are none): a known one can be told from new ones."""
    results = Axe().run(page)
    return {
        str(rule["id"]): f"{page.url}\n{results.generate_report(str(rule['id']))}"
        for rule in results.response["violations"]
    }


def axe_report(page: Page) -> str:
    """axe-core's violations on the current page, as text ('' when there are none)."""
    results = Axe().run(page)
    if results.violations_count == 0:
        return ""
    return f"{page.url}\n{results.generate_snapshot()}\n{results.generate_report()}"


# What leaves the window sideways: the page scrolling sideways, and every element whose box
# crosses the window's left or right edge. Content that scrolls inside a box of its own that
# fits the window (a wide table in a scrolling wrapper) is where it belongs: only the box is
# measured.
_OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push("the page is " + document.documentElement.scrollWidth + " px wide");
  }
  const scrolls = (el) => {
    const overflow = getComputedStyle(el).overflowX;
    return overflow === "auto" || overflow === "scroll" || overflow === "hidden"
      || overflow === "clip";
  };
  const outside = (box) => box.left < -0.5 || box.right > width + 0.5;
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width <= 0 || !outside(box)) continue;
    let clipped = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (scrolls(up) && !outside(up.getBoundingClientRect())) { clipped = true; break; }
    }
    if (!clipped) {
      found.push(el.outerHTML.slice(0, 80) + " spans " + box.left + " to " + box.right);
    }
  }
  return found;
}"""


def overflowing(page: Page) -> list[str]:
    """What on the current page is wider than the window ([] when it all fits)."""
    found: list[str] = page.evaluate(_OVERFLOWING)
    return found


def dead_links(page: Page) -> dict[str, str]:
    """The page's same-origin links (<a href>) that answer 400 or more to this browser (its
    cookies, following redirects, as a click would), each with what is wrong; an in-page link
    (#id) must name an element of the page. {} when every link works. The language switcher's
    links are not followed: each sets the person's language (tests/i18n checks them)."""
    here = urlsplit(page.url)
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    found = {}
    for href in sorted(set(hrefs)):
        target = urlsplit(href)
        if (target.scheme, target.netloc) != (here.scheme, here.netloc):
            continue  # another site, a data: download, an otpauth: key
        if target.path == "/.gateway/language":
            continue
        if target._replace(fragment="") == here._replace(fragment="") and target.fragment:
            if page.locator(f"[id='{target.fragment}']").count() == 0:
                found[href] = f"no element with id {target.fragment!r} on the page"
            continue
        response = page.request.get(href)
        try:
            if response.status >= 400:
                found[href] = f"{response.status} at {response.url}"
        finally:
            response.dispose()
    return found
