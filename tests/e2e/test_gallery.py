"""A gallery of every page the gateway shows a person, against the demo (issue 17).

Each state (a page as a person meets it: the enrolment of each method, each challenge before and
after a code is sent, wrong answers, the lockout, the recovery codes, the account pages, the admin
pages, the error pages, ...) is rendered 320 px and 1280 px wide, the second by resizing the
window rather than walking there again. Each width is written as a full-page PNG to the gallery
folder, with an index.html that shows them all at once:

    $GATEWAY_GALLERY_DIR, else gallery/ in pytest's temporary folder (its path is printed)
        index.html                  every state, in the order below: its name, what it is,
                                    both widths side by side, and any problem found on it
        <state>-320px.png
        <state>-1280px.png

And each state is checked: axe-core finds no violation at either width, nothing is wider than
the window at either width, and every same-origin link on it answers below 400 to that person
(their cookies, following redirects). Those checks are separate tests per state and width
(test_axe, test_fits, test_links), so a known product bug can be marked on its one check; a
state in German, French or Spanish is also read for its <html lang> and for English left on it
(test_speaks_its_language). Each test's id starts with its group: `-k languages` picks one.

The states are walked in groups, each with a demo process of its own; a group is walked once, by
the first check that needs it. The demo's texts, calls and emails are read from its outbox, and
the demo's store is set by hand where waiting would take minutes (failures for the lockout).
"""

from __future__ import annotations

import html
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import Browser, Page, ViewportSize, expect

from gateway import i18n
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    ENROL_URL,
    RECOVERY_URL,
    app_sign_in,
    axe_violations,
    code_now,
    dead_links,
    enrol,
    enrolment_secret,
    enter_code,
    expect_application_home,
    overflowing,
    past_recovery_codes,
    wrong_code,
)
from tests.e2e.test_passkeys import submit_without_script, virtual_authenticator
from tests.e2e.test_sessions_page import FIREFOX
from tests.senders.fakes import outbox_messages
from tests.support import GatewayProcess, free_port

pytestmark = pytest.mark.browser

WIDTHS: dict[int, ViewportSize] = {
    320: {"width": 320, "height": 720},
    1280: {"width": 1280, "height": 900},
}
CAROL = ("carol@acme.example", "acme-demo-1")
BOB = ("bob@globex.example", "globex-demo-1")
DAN = ("dan@globex.example", "globex-demo-1")
ERIN = ("erin@globex.example", "globex-demo-1")
GRACE = ("grace@globex.example", "globex-demo-1")
FRANK = ("frank@initech.example", "initech-demo-1")
MOBILE, LANDLINE = "+44 7400 123456", "+44 20 7946 0000"
SAVED = "I have saved these codes — continue"
TEXTED = re.compile(r"\b([0-9]{6})\b")
SPOKEN = re.compile(r"code is: ((?:[0-9], ){5}[0-9])")
# The demo's access rules, plus a step-up on the application's sign-out (as in test_step_up): a
# session let through without a code (a deferral) is stale there at once, so no bound is waited.
STEP_UP_RULE = """    - paths: ["/logout"]
      access: two_factor
      reauthenticate_after: 1m
"""

# The states, group by group, in the order they are walked: (name, what it shows).
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "acme": (
        ("app-login", "The application's own login form (Legacy Billing), before the gateway"),
        ("enrol-app", "Alice (Acme enforces 2FA): set up an authenticator app, no putting off"),
        ("enrol-app-wrong-code", "Setting up the app: a wrong code"),
        ("recovery-codes-new", "Recovery codes, shown once after the first enrolment"),
        ("recovery-codes-copied", 'The new codes after "Copy all codes"'),
        ("account-one-method", "Two-step sign-in (/.gateway/account): one method"),
        ("recovery-codes-remaining", "Recovery codes later: how many remain"),
        ("recovery-codes-replaced", "New recovery codes replacing the old ones"),
        ("passkeys-none", "Your passkeys: none yet, the form to add one"),
        ("sign-out", "Sign out, signed in (with a link to two-step sign-in)"),
        ("sessions-two", "Where you're signed in: two browsers, this one marked"),
        (
            "sessions-end-this",
            'Where you\'re signed in: "To end this session, sign out" (only a crafted form asks)',
        ),
        ("admin-members", "Admin: the members of Acme"),
        ("admin-member", "Admin: one member (herself), signed in from two browsers"),
        ("admin-member-reset-unconfirmed", "Admin: a reset without ticking the confirmation"),
        ("admin-member-phone-saved", "Admin: a new phone number saved for a member"),
        ("admin-enforce", "Admin: enable 2FA for all users (Acme has it already)"),
        ("admin-reauth", "Admin: confirm it is you before an action"),
        ("sessions-other-ended", "Where you're signed in: the other browser's session ended"),
        ("sign-out-signed-out", "Sign out, not signed in"),
        ("challenge-app", "Challenge: a code from the authenticator app"),
        ("challenge-app-wrong-code", "Challenge: a wrong app code, with the tries left"),
        ("challenge-recovery", "Challenge: a recovery code"),
        (
            "phone-confirm-unavailable",
            "The phone number an admin set, where the company allows no texts or calls",
        ),
        ("recovery-used", "Signed in with a recovery code: codes remaining"),
        ("wait-a-moment", "A growing delay after wrong answers: wait, then try again (429)"),
        ("locked-out", "Too many wrong answers: locked out for a while (429)"),
        ("challenge-app-client", "Frank (Initech, a client account): the app's challenge"),
        ("too-many-wrong-codes", "Five wrong codes in a row: the sign-in is stopped (429)"),
    ),
    "passkey": (
        ("enrol-passkey", "Carol: add a passkey at enrolment"),
        ("enrol-passkey-error", "Adding a passkey: the browser gave no answer"),
        ("passkeys-one", "Your passkeys: one, the only way to sign in"),
        ("account-passkey", "Two-step sign-in: a passkey"),
        ("error-403-not-admin", "The admin pages to someone who is no admin (403)"),
        ("challenge-passkey", "Challenge: use your passkey"),
        ("challenge-passkey-error", "Challenge: the browser gave no passkey answer"),
    ),
    "globex": (
        ("enrol-app-deferral", 'Bob (Globex): set up, with "Remind me in 48 hours"'),
        ("account-not-set-up", "Two-step sign-in: put off, not set up yet"),
        ("enrol-sms-number", "Text message: the mobile number"),
        ("enrol-sms-landline", "Text message: a landline, with the advice to take a call"),
        ("enrol-sms-sent", "Text message: the code we texted"),
        ("enrol-sms-wrong-code", "Text message: a wrong code, with the tries left"),
        ("account-several", "Two-step sign-in: several methods (texts and calls)"),
        ("challenge-sms-send", "Challenge: text me a code (before sending)"),
        ("challenge-sms-sent", "Challenge: the code we texted"),
        ("challenge-voice-send", "Challenge, another way: call me with a code"),
        ("challenge-voice-sent", "Challenge: the code from our call"),
        ("challenge-voice-too-soon", 'Challenge: "Call again" too soon'),
        ("enrol-voice-number", "Dan: phone call, the number"),
        ("enrol-voice-sent", "Phone call: the code from our call"),
        ("enrol-email-send", "Erin: email me a code (before sending)"),
        ("enrol-email-sent", "Email: the code we emailed"),
        ("enrol-email-too-soon", 'Email: "Send again" too soon'),
        ("challenge-email-send", "Challenge: email me a code (before sending)"),
        ("challenge-email-sent", "Challenge: the code we emailed"),
        ("account-confirm-first", "Grace, spared the code on a trusted network: confirm first"),
        ("reauth", "Confirm it is you, before changing how one signs in"),
    ),
    "errors": (
        ("error-404", "A gateway page that does not exist (404)"),
        ("error-403", "An address the access rules refuse (403)"),
        ("error-sign-in-expired", "A sign-in step with no sign-in going (403)"),
        ("error-400-form-expired", "A form posted without its CSRF token (400)"),
        (
            "error-401-step-up",
            "A form posted to a step-up path by a session that put off the code (401)",
        ),
        ("error-502", "The application is down (502)"),
    ),
    # issue 19: the pages in German, French and Spanish (the browser's Accept-Language, then
    # the switcher's cookie), at one width; each is also read for English left on it
    "languages": tuple(
        (f"{lang}-{state}", f"{name}: {shows}")
        for lang, name in (("de", "German"), ("fr", "French"), ("es", "Spanish"))
        for state, shows in (
            ("enrol-app", "set up an authenticator app"),
            ("code-sent", "the code we emailed (Frank's, Initech offers email)"),
            ("enrol-app-wrong-code", "setting up the app, a wrong code"),
            ("recovery-codes-new", "recovery codes, shown once"),
            ("account", "two-step sign-in, one method"),
            ("sessions", "where you're signed in"),
            ("admin-members", "admin: the members of Acme (Alice's)"),
            ("sign-out", "sign out, signed in"),
            ("challenge-app", "the challenge and its other ways, Remember this browser if offered"),
            ("challenge-recovery", "the challenge: a recovery code"),
            ("recovery-used", "signed in with a recovery code: codes remaining"),
            ("error-403", "an address the access rules refuse (403)"),
            ("error-404", "a gateway page that does not exist (404)"),
        )
    ),
}
STATES: dict[str, str] = {name: shows for states in GROUPS.values() for name, shows in states}
# states rendered at one width only (the languages: the layout is the English one's)
ONE_WIDTH = frozenset(name for name, _ in GROUPS["languages"])


def widths_of(state: str) -> tuple[int, ...]:
    return (320,) if state in ONE_WIDTH else tuple(WIDTHS)


GROUP_OF: dict[str, str] = {name: group for group, states in GROUPS.items() for name, _ in states}
# A link a state may show though it does not work, and why (state -> link path -> reason).
EXPECTED_DEAD: dict[str, dict[str, str]] = {
    "error-502": {"/": "the start page is the application, which is what is down"},
}


@dataclass(frozen=True)
class Known:
    """A product bug that fails one check of one state until it is fixed."""

    bug: str
    rule: str | None = None  # for axe-core: the one rule it breaks (any other still fails)


class KnownBug(AssertionError):
    """A check failing as a Known bug says (the only failure its xfail mark expects)."""


# (check, state, width) -> the bug; check is "axe", "fits" or "links" (whose width is None).
# Strict: once the bug is fixed its check passes, which fails until the entry is removed.
KNOWN_BUGS: dict[tuple[str, str, int | None], Known] = {}
# axe-core rules a state breaks by a decision, with the decision (state -> rule -> why). The
# 429 wait pages move on by themselves when the wait is over (<meta http-equiv=refresh>, from
# handlers/shared/attempts.refusal), as issue 17 asks ("a countdown that works without
# JavaScript"); axe's meta-refresh (WCAG 2.2.1, F40/F41) flags any delayed refresh. The page
# says that it will move on, and moves only to the step the person was refused at, once they
# may use it. Any other violation on these pages still fails.
ACCEPTED: dict[str, dict[str, str]] = {
    state: {"meta-refresh": "the wait page moves on by itself without JavaScript (issue 17)"}
    for state in ("wait-a-moment", "locked-out")
}


@dataclass
class Shot:
    """One state as it was rendered and checked."""

    state: str
    pngs: dict[int, str] = field(default_factory=dict)  # width -> file name
    axe: dict[int, dict[str, str]] = field(default_factory=dict)  # width -> rule -> report
    overflow: dict[int, list[str]] = field(default_factory=dict)  # width -> what is too wide
    dead: list[str] = field(default_factory=list)  # links that do not work
    url: str = ""
    lang: str = ""  # <html lang>
    text: str = ""  # what the page says (its body's text, as rendered)


class Gallery:
    """The folder of PNGs and its index, and what was found on each state."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.shots: dict[str, Shot] = {}

    def take(self, page: Page, state: str) -> None:
        """Render the current page at each width (a full-page PNG, axe-core, what overflows),
        then follow its links; the window is left at the narrow width."""
        assert state in STATES, f"{state} is not in GROUPS"
        assert state not in self.shots, f"{state} taken twice"
        page.wait_for_load_state("load")
        shot = Shot(state, url=page.url, lang=page.locator("html").get_attribute("lang") or "")
        shot.text = page.locator("body").inner_text()
        for width in widths_of(state):
            page.set_viewport_size(WIDTHS[width])
            name = f"{state}-{width}px.png"
            page.screenshot(path=self.folder / name, full_page=True)
            shot.pngs[width] = name
            shot.overflow[width] = overflowing(page)
            shot.axe[width] = axe_violations(page)
        page.set_viewport_size(WIDTHS[320])
        allowed = EXPECTED_DEAD.get(state, {})
        shot.dead = [
            f"{url}: {wrong}"
            for url, wrong in dead_links(page).items()
            if urlsplit(url).path not in allowed
        ]
        self.shots[state] = shot

    def write_index(self) -> Path:
        """index.html: every state taken, in GROUPS order, both widths, and its problems."""
        sections = []
        for group, states in GROUPS.items():
            rows = []
            for state, shows in states:
                shot = self.shots.get(state)
                if shot is None:
                    rows.append(
                        f'<section id="{state}"><h3>{state}</h3><p>{html.escape(shows)}</p>'
                        "<p><strong>Not rendered</strong> (its group did not get this far).</p>"
                        "</section>"
                    )
                    continue
                figures = "".join(
                    f'<figure><a href="{name}"><img src="{name}" alt="{state} at {width} px" '
                    f'loading="lazy" class="w{width}"></a><figcaption>{width} px</figcaption>'
                    "</figure>"
                    for width, name in shot.pngs.items()
                )
                problems = "".join(
                    f"<li>{html.escape(p)}</li>"
                    for p in [
                        *(
                            f"{w} px: axe-core violations: {', '.join(found)}"
                            for w, found in shot.axe.items()
                            if found
                        ),
                        *(f"{w} px: wider than the window" for w, o in shot.overflow.items() if o),
                        *(f"dead link: {d}" for d in shot.dead),
                    ]
                )
                rows.append(
                    f'<section id="{state}"><h3>{state}</h3><p>{html.escape(shows)} — '
                    f"<code>{html.escape(shot.url)}</code></p>"
                    + (f'<ul class="problems">{problems}</ul>' if problems else "")
                    + f'<div class="widths">{figures}</div></section>'
                )
            sections.append(f"<h2>{group}</h2>" + "".join(rows))
        index = self.folder / "index.html"
        index.write_text(
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>Gateway page gallery</title><style>"
            "body{font-family:system-ui,sans-serif;margin:1rem 2rem}"
            "section{border-top:1px solid #ccc;padding:0.5rem 0 1rem}"
            ".widths{display:flex;gap:1.5rem;align-items:flex-start;flex-wrap:wrap}"
            "figure{margin:0}img{border:1px solid #999;display:block}"
            "img.w320{width:320px}img.w1280{width:640px}"
            ".problems{color:#a4161a;font-weight:600}</style></head><body>"
            f"<h1>Gateway page gallery</h1><p>{len(self.shots)} states, each at "
            f"{' and '.join(f'{w} px' for w in WIDTHS)} wide (the 1280 px one shown at half "
            "size: click for the PNG).</p>" + "".join(sections) + "</body></html>\n",
            encoding="utf-8",
        )
        return index


@contextmanager
def new_page(
    browser: Browser, clipboard_for: str | None = None, user_agent: str | None = None
) -> Iterator[Page]:
    """A fresh browser profile, 320 px wide."""
    context = browser.new_context(viewport=WIDTHS[320], user_agent=user_agent)
    context.set_default_timeout(10_000)
    if clipboard_for is not None:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=clipboard_for)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def demo_in(tmp: Path) -> Iterator[GatewayProcess]:
    demo = GatewayProcess.demo(tmp)
    try:
        yield demo
    finally:
        demo.stop()


def sent_code(data: Path, channel: str, to: str) -> str:
    """The code in the latest text ("sms"), call ("voice") or email to `to`, in the outbox."""
    messages = [m for m in outbox_messages(data / "outbox.log") if m["channel"] == channel]
    assert messages and messages[-1]["to"] == to, messages
    match = (SPOKEN if channel == "voice" else TEXTED).search(messages[-1]["text"])
    assert match, messages[-1]
    return match.group(1).replace(", ", "")


def store(data: Path, sql: str, args: tuple[Any, ...] = ()) -> None:
    with sqlite3.connect(data / "gateway.db") as db:
        db.execute(sql, args)


def set_failures(data: Path, user: str, count: int) -> None:
    """`count` wrong answers of `user` from this machine, just now (as regulation counts them)."""
    key = f"user_ip:{user}|127.0.0.1"
    store(data, "DELETE FROM failures WHERE key = ?", (key,))
    now = time.time()
    for k in range(count):
        store(data, "INSERT INTO failures (key, at) VALUES (?, ?)", (key, now - k * 0.01))


def age_sends(data: Path) -> None:
    """The recorded sends 31 s older, as if the pause between codes had passed."""
    store(data, "UPDATE sends SET at = at - 31")


def other_way(page: Page, name: str, region: str = "Try another way") -> None:
    page.get_by_role("region", name=region).get_by_role("link", name=name).click()


def press(page: Page, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", name=text, level=1)).to_be_visible()


def continue_past_codes(page: Page) -> None:
    expect(page).to_have_url(RECOVERY_URL)
    press(page, SAVED)


# ---------------------------------------------------------------------------------------------
# The groups


def walk_acme(gallery: Gallery, browser: Browser, tmp: Path) -> None:
    """Alice, Acme's admin, from her first sign-in to a lockout; Frank's five wrong codes."""
    take = gallery.take
    with ExitStack() as stack:
        demo = stack.enter_context(demo_in(tmp))
        base, data = demo.url, tmp / "demo"
        page = stack.enter_context(new_page(browser, clipboard_for=base))
        page.goto(base + "/")
        expect(page.get_by_role("heading", name="Sign in to Legacy Billing")).to_be_visible()
        take(page, "app-login")
        app_sign_in(page, base, *ALICE)
        expect(page).to_have_url(ENROL_URL)
        expect(page.get_by_role("button", name="Remind me in 48 hours")).to_have_count(0)
        take(page, "enrol-app")
        secret = enrolment_secret(page)
        enter_code(page, wrong_code(secret), "Confirm and continue")
        expect(page.get_by_role("alert")).to_contain_text("not right")
        take(page, "enrol-app-wrong-code")
        enter_code(page, code_now(secret), "Confirm and continue")
        heading(page, "Save your recovery codes")
        take(page, "recovery-codes-new")
        page.get_by_role("button", name="Copy all codes").click()
        expect(page.get_by_role("status")).to_contain_text("Copied")
        take(page, "recovery-codes-copied")
        press(page, SAVED)
        expect_application_home(page, base, ALICE[0])

        page.goto(base + "/.gateway/account")
        expect(page.get_by_text("Your only way to sign in")).to_be_visible()
        take(page, "account-one-method")
        page.goto(base + "/.gateway/recovery?rd=%2F")
        expect(page.get_by_text("10 codes remain.")).to_be_visible()
        take(page, "recovery-codes-remaining")
        press(page, "Make new codes")
        heading(page, "Save your new recovery codes")
        codes = [c.strip() for c in page.locator("ol.recovery-codes li").all_inner_texts()]
        take(page, "recovery-codes-replaced")
        press(page, SAVED)
        page.goto(base + "/.gateway/passkeys")
        expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
        take(page, "passkeys-none")
        page.goto(base + "/.gateway/logout")
        expect(page.get_by_role("link", name="Your two-step sign-in")).to_be_visible()
        take(page, "sign-out")

        # a second browser (Firefox, says its user agent): the next step's code, hers twice
        other = stack.enter_context(new_page(browser, user_agent=FIREFOX))
        app_sign_in(other, base, *ALICE)
        expect(other).to_have_url(CHALLENGE_URL)
        enter_code(other, code_now(secret, steps_ahead=1), "Verify")
        expect_application_home(other, base, ALICE[0])
        page.goto(base + "/.gateway/account/sessions")
        heading(page, "Where you're signed in")
        sessions = page.get_by_role("region", name="Signed in now").get_by_role("listitem")
        expect(sessions).to_have_count(2)
        expect(sessions.first).to_contain_text("This browser")
        expect(sessions.nth(1)).to_contain_text("Firefox")
        take(page, "sessions-two")
        # this session's own handle in the other's form: no page offers it, a crafted form can
        page.evaluate(
            """() => {
              const mine = document.querySelector("li[aria-current] h3").id.slice(8);
              document.querySelector("form[action$='/sessions/end'] input[name=session]")
                .value = mine;
            }"""
        )
        press(page, "End this session")
        expect(page.get_by_role("status")).to_contain_text("To end this session, sign out.")
        expect(sessions).to_have_count(2)
        take(page, "sessions-end-this")

        page.goto(base + "/.gateway/admin/")
        heading(page, "Members of Acme Corporation")
        take(page, "admin-members")
        page.get_by_role("table").get_by_role("link", name=ALICE[0]).click()
        heading(page, ALICE[0])
        listed = page.get_by_role("region", name="Where you are signed in")
        expect(listed.get_by_role("listitem")).to_have_count(2)
        expect(listed).to_contain_text("Firefox")
        take(page, "admin-member")
        page.locator("form[action$='/reset']").evaluate("form => { form.noValidate = true; }")
        press(page, "Reset two-step sign-in")  # the box left unticked: refused, nothing reset
        expect(page.get_by_role("alert")).to_contain_text("Tick the box")
        take(page, "admin-member-reset-unconfirmed")
        page.get_by_label("New phone number (optional)").fill(MOBILE)
        press(page, "Save")
        expect(page.get_by_role("status")).to_contain_text("The new phone number was saved")
        take(page, "admin-member-phone-saved")
        page.goto(base + "/.gateway/admin/acme/enforce")
        expect(page.get_by_text("It cannot be turned off.")).to_be_visible()
        take(page, "admin-enforce")
        page.goto(base + "/.gateway/admin/reauth?rd=%2F.gateway%2Fadmin%2Facme%2F")
        heading(page, "Confirm it is you")
        take(page, "admin-reauth")
        page.goto(base + "/.gateway/account/sessions")
        with page.expect_navigation():
            sessions.nth(1).get_by_role("button", name="End this session").click()
        expect(page.get_by_role("status")).to_contain_text("was ended")
        expect(sessions).to_have_count(1)
        take(page, "sessions-other-ended")

        page.goto(base + "/.gateway/logout")
        press(page, "Sign out")
        page.goto(base + "/.gateway/logout")
        expect(page.get_by_text("You are not signed in.")).to_be_visible()
        take(page, "sign-out-signed-out")
        app_sign_in(page, base, *ALICE)
        expect(page).to_have_url(CHALLENGE_URL)
        heading(page, "Enter your code")
        take(page, "challenge-app")
        enter_code(page, wrong_code(secret), "Verify")
        expect(page.get_by_role("alert")).to_contain_text("more tries")
        take(page, "challenge-app-wrong-code")
        other_way(page, "A recovery code")
        heading(page, "Enter a recovery code")
        take(page, "challenge-recovery")
        page.get_by_label("Recovery code").fill(codes[0])
        press(page, "Verify")
        heading(page, "Confirm your new phone number")  # the number set on her member page
        take(page, "phone-confirm-unavailable")
        page.get_by_role("link", name="Continue").click()
        heading(page, "Signed in with a recovery code")
        take(page, "recovery-used")
        press(page, "Continue")
        expect_application_home(page, base, ALICE[0])

        page.context.clear_cookies()
        app_sign_in(page, base, *ALICE)
        expect(page).to_have_url(CHALLENGE_URL)
        set_failures(data, ALICE[0], 9)  # past the 5 free ones: the next answer waits 32 s
        enter_code(page, code_now(secret), "Verify")
        heading(page, "Please wait a moment")
        take(page, "wait-a-moment")
        set_failures(data, ALICE[0], 10)  # Acme's per_user_and_address: locked out
        page.get_by_role("link", name="Back to the sign-in step").click()
        enter_code(page, code_now(secret), "Verify")
        heading(page, "Too many wrong answers")
        take(page, "locked-out")

        page = stack.enter_context(new_page(browser))
        app_sign_in(page, base, *FRANK)
        secret, _ = enrol(page)
        past_recovery_codes(page)
        expect_application_home(page, base, FRANK[0])
        page.context.clear_cookies()
        app_sign_in(page, base, *FRANK)  # asked again: a client account, trusted network or not
        expect(page).to_have_url(CHALLENGE_URL)
        take(page, "challenge-app-client")
        for _ in range(5):
            enter_code(page, wrong_code(secret), "Verify")
        heading(page, "Too many wrong codes")
        take(page, "too-many-wrong-codes")


def walk_passkey(gallery: Gallery, browser: Browser, tmp: Path) -> None:
    """Carol's passkey, at http://localhost (a passkey's RP ID cannot be an IP address)."""
    take = gallery.take
    with demo_in(tmp) as demo, new_page(browser) as page:
        base = demo.url.replace("127.0.0.1", "localhost")
        virtual_authenticator(page.context, page)
        app_sign_in(page, base, *CAROL)
        expect(page).to_have_url(ENROL_URL)
        other_way(page, "Passkey or security key", "Or choose another method")
        heading(page, "Add a passkey")
        take(page, "enrol-passkey")
        submit_without_script(page)
        expect(page.get_by_role("alert")).to_be_visible()
        take(page, "enrol-passkey-error")
        page.get_by_label("Name for this passkey").fill("Work laptop")
        page.get_by_role("button", name="Add passkey and continue").click()
        continue_past_codes(page)
        expect_application_home(page, base, CAROL[0])

        page.goto(base + "/.gateway/passkeys")
        expect(page.get_by_role("heading", name="Work laptop")).to_be_visible()
        take(page, "passkeys-one")
        page.goto(base + "/.gateway/account")
        expect(page.get_by_role("link", name="Manage your passkeys")).to_be_visible()
        take(page, "account-passkey")
        response = page.goto(base + "/.gateway/admin/")
        assert response is not None and response.status == 403
        take(page, "error-403-not-admin")

        page.context.clear_cookies()
        app_sign_in(page, base, *CAROL)
        heading(page, "Use your passkey")
        take(page, "challenge-passkey")
        submit_without_script(page)
        expect(page.get_by_role("alert")).to_be_visible()
        take(page, "challenge-passkey-error")
        page.get_by_role("button", name="Use passkey").click()
        expect_application_home(page, base, CAROL[0])


def walk_globex(gallery: Gallery, browser: Browser, tmp: Path) -> None:
    """Bob puts it off, then sets up texts (and so calls); Dan calls, Erin emails, and Grace,
    on a trusted network, is sent to confirm it is her before changing anything."""
    take = gallery.take
    with ExitStack() as stack:
        demo = stack.enter_context(demo_in(tmp))
        base, data = demo.url, tmp / "demo"

        page = stack.enter_context(new_page(browser))
        app_sign_in(page, base, *BOB)
        expect(page).to_have_url(ENROL_URL)
        take(page, "enrol-app-deferral")
        press(page, "Remind me in 48 hours")
        expect_application_home(page, base, BOB[0])
        page.goto(base + "/.gateway/account")
        heading(page, "Two-step sign-in")
        take(page, "account-not-set-up")
        press(page, "Set up two-step sign-in now")
        other_way(page, "Text message (SMS)", "Or choose another method")
        heading(page, "Add your phone number")
        take(page, "enrol-sms-number")
        page.get_by_label("Mobile phone number").fill(LANDLINE)
        press(page, "Text me a code")
        expect(page.get_by_role("heading", name="This looks like a landline")).to_be_visible()
        take(page, "enrol-sms-landline")
        page.get_by_label("Mobile phone number").fill(MOBILE)
        press(page, "Text me a code")
        heading(page, "Enter the code we texted you")
        take(page, "enrol-sms-sent")
        code = sent_code(data, "sms", "+447400123456")
        enter_code(page, f"{(int(code) + 1) % 10**6:06d}", "Confirm and continue")
        expect(page.get_by_role("alert")).to_contain_text("not right")
        take(page, "enrol-sms-wrong-code")
        enter_code(page, code, "Confirm and continue")
        continue_past_codes(page)
        heading(page, "Two-step sign-in")
        expect(page.get_by_role("region", name="Your methods")).to_contain_text("Phone call")
        take(page, "account-several")

        page.context.clear_cookies()
        age_sends(data)
        app_sign_in(page, base, *BOB)
        expect(page).to_have_url(CHALLENGE_URL)
        heading(page, "Text me a code")
        take(page, "challenge-sms-send")
        press(page, "Text me a code")
        heading(page, "Enter the code we texted you")
        take(page, "challenge-sms-sent")
        other_way(page, "Phone call")
        heading(page, "Call me with a code")
        take(page, "challenge-voice-send")
        press(page, "Call me with a code")
        heading(page, "Enter the code from our call")
        take(page, "challenge-voice-sent")
        press(page, "Call again")
        expect(page.get_by_role("alert")).to_contain_text("You can ask for another call in")
        take(page, "challenge-voice-too-soon")
        enter_code(page, sent_code(data, "voice", "+447400123456"), "Verify")
        expect_application_home(page, base, BOB[0])

        page = stack.enter_context(new_page(browser))
        app_sign_in(page, base, *DAN)
        other_way(page, "Phone call", "Or choose another method")
        heading(page, "Add your phone number")
        take(page, "enrol-voice-number")
        page.get_by_label("Phone number").fill(LANDLINE)
        press(page, "Call me with a code")
        heading(page, "Enter the code from our call")
        take(page, "enrol-voice-sent")
        enter_code(page, sent_code(data, "voice", "+442079460000"), "Confirm and continue")
        continue_past_codes(page)
        expect_application_home(page, base, DAN[0])

        page = stack.enter_context(new_page(browser))
        app_sign_in(page, base, *ERIN)
        other_way(page, "Email", "Or choose another method")
        heading(page, "Email me a code")
        take(page, "enrol-email-send")
        press(page, "Email me a code")
        heading(page, "Enter the code we emailed you")
        take(page, "enrol-email-sent")
        press(page, "Send again")
        expect(page.get_by_role("alert")).to_contain_text("You can ask for another in")
        take(page, "enrol-email-too-soon")
        enter_code(page, sent_code(data, "email", ERIN[0]), "Confirm and continue")
        continue_past_codes(page)
        expect_application_home(page, base, ERIN[0])
        page.context.clear_cookies()
        age_sends(data)
        app_sign_in(page, base, *ERIN)
        heading(page, "Email me a code")
        take(page, "challenge-email-send")
        press(page, "Email me a code")
        heading(page, "Enter the code we emailed you")
        take(page, "challenge-email-sent")
        enter_code(page, sent_code(data, "email", ERIN[0]), "Verify")
        expect_application_home(page, base, ERIN[0])

        page = stack.enter_context(new_page(browser))
        app_sign_in(page, base, *GRACE)
        enrol(page)
        continue_past_codes(page)
        expect_application_home(page, base, GRACE[0])
        press(page, "Sign out")  # the application's: the gateway signs out too
        app_sign_in(page, base, *GRACE)  # a trusted network: no code asked
        expect_application_home(page, base, GRACE[0])
        page.goto(base + "/.gateway/account")
        expect(page.get_by_role("link", name="confirm it is you")).to_be_visible()
        take(page, "account-confirm-first")
        page.get_by_role("link", name="confirm it is you").click()
        heading(page, "Confirm it is you")
        take(page, "reauth")


def step_up_settings(tmp: Path) -> dict[str, Any]:
    """The running demo's settings on another port, with its policies plus STEP_UP_RULE and a
    store of its own."""
    settings = yaml.safe_load((tmp / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    policies = tmp / "step-up-policies"
    policies.mkdir()
    for path in Path(settings["policy_dir"]).glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "applications.yaml":
            assert "  legacy:\n" in text
            text = text.rstrip("\n") + "\n" + STEP_UP_RULE
        (policies / path.name).write_text(text, encoding="utf-8")
    settings["listen"]["port"] = free_port()
    settings["policy_dir"] = str(policies)
    settings["store"] = f"sqlite://{tmp / 'step-up.db'}"
    return settings


# English a translated page must not say: the words of its buttons and headings, and words
# that no German, French or Spanish sentence has (case-sensitive, so a base32 secret in capitals
# is not read as words; "English" itself is the switcher's link)
ENGLISH = re.compile(
    r"\b(?:Sign (?:in|out)|Signed in|Continue|Verify|Recovery codes?|recovery codes?|Try another"
    r"|[Tt]he|[Yy]ou|[Yy]our|[Aa]nd|[Ww]ith|[Tt]his|[Ff]rom|[Aa]gain|[Pp]lease|[Hh]ere)\b"
)


# per language: its user (a fresh one each, so each enrols)
LANGUAGES = {"de": ALICE, "fr": FRANK, "es": CAROL}
SWITCHER = {"de": "Deutsch", "fr": "Français", "es": "Español"}


def said(lang: str, english: str, **params: Any) -> str:
    """`english` as the gateway's catalogue says it in `lang`."""
    with i18n.speaking(lang):
        return i18n.gettext(english, **params)


def switch_to(page: Page, lang: str) -> None:
    """Choose `lang` with the switcher at the foot of the page: the same page comes back."""
    here = page.url
    with page.expect_navigation():
        page.locator("footer").get_by_role("link", name=SWITCHER[lang]).click()
    expect(page).to_have_url(here)
    expect(page.locator("html")).to_have_attribute("lang", lang)


def submit_code(page: Page, code: str, button: str) -> None:
    page.locator("#code").fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def submit(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def walk_languages(gallery: Gallery, browser: Browser, tmp: Path) -> None:
    """Three people, each in a browser speaking German, French or Spanish, from enrolment to
    a sign-in with a recovery code and the error pages. The Spanish browser asks for German,
    and chooses Spanish with the switcher at the foot of the first gateway page it meets (a
    cookie from then on). Pages only one of them meets are shown in the other languages by
    the switcher: Frank's emailed code (Initech offers email), Alice's admin page (Acme's
    admin)."""
    with ExitStack() as stack:
        demo = stack.enter_context(demo_in(tmp))
        base, data = demo.url, tmp / "demo"
        for lang, (user, password) in LANGUAGES.items():
            context = browser.new_context(
                viewport=WIDTHS[320], locale="de-DE" if lang == "es" else lang
            )
            context.set_default_timeout(10_000)
            stack.callback(context.close)
            page = context.new_page()

            def take(state: str, lang: str = lang, page: Page = page) -> None:
                expect(page.locator("html")).to_have_attribute("lang", lang)
                gallery.take(page, f"{lang}-{state}")

            app_sign_in(page, base, user, password)
            expect(page).to_have_url(ENROL_URL)
            if lang == "es":
                expect(page.locator("html")).to_have_attribute("lang", "de")
                switch_to(page, "es")
            take("enrol-app")
            if lang == "fr":
                submit(page, ".other-ways a[href*='method=email']")
                heading(page, said(lang, "Email me a code"))
                press(page, said(lang, "Email me a code"))
                heading(page, said(lang, "Enter the code we emailed you"))
                take("code-sent")
                for other in ("de", "es"):
                    switch_to(page, other)
                    heading(page, said(other, "Enter the code we emailed you"))
                    take("code-sent", other)
                switch_to(page, lang)
                submit(page, ".other-ways a[href*='method=totp']")
                expect(page).to_have_url(ENROL_URL)
            secret = enrolment_secret(page)
            submit_code(page, wrong_code(secret), said(lang, "Confirm and continue"))
            expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
            take("enrol-app-wrong-code")
            submit_code(page, code_now(secret), said(lang, "Confirm and continue"))
            expect(page).to_have_url(RECOVERY_URL)
            codes = [c.strip() for c in page.locator("ol.recovery-codes li").all_inner_texts()]
            take("recovery-codes-new")
            submit(page, "form:has(input[name=continue]) button[type=submit]")
            expect_application_home(page, base, user)
            page.goto(base + "/.gateway/account")
            heading(page, said(lang, "Two-step sign-in"))
            take("account")
            page.goto(base + "/.gateway/account/sessions")
            heading(page, said(lang, "Where you're signed in"))
            take("sessions")
            if lang == "de":
                page.goto(base + "/.gateway/admin/")
                for each in ("de", "fr", "es"):
                    if each != lang:
                        switch_to(page, each)
                    heading(page, said(each, "Members of %(name)s", name="Acme Corporation"))
                    take("admin-members", each)
                switch_to(page, lang)
            page.goto(base + "/.gateway/logout")
            take("sign-out")
            press(page, said(lang, "Sign out"))
            page.goto(base + "/.gateway/logout")
            expect(page.get_by_text(said(lang, "You are not signed in."))).to_be_visible()

            app_sign_in(page, base, user, password)  # the choice of language kept
            expect(page).to_have_url(CHALLENGE_URL)
            expect(
                page.get_by_role("button", name=said(lang, "Verify"), exact=True)
            ).to_be_visible()
            others = page.get_by_role("region", name=said(lang, "Try another way"))
            expect(others.get_by_role("link")).not_to_have_count(0)
            take("challenge-app")
            submit(page, ".other-ways a[href*='method=recovery']")
            heading(page, said(lang, "Enter a recovery code"))
            take("challenge-recovery")
            submit_code(page, codes[0], said(lang, "Verify"))
            heading(page, said(lang, "Signed in with a recovery code"))
            take("recovery-used")
            press(page, said(lang, "Continue"))
            expect_application_home(page, base, user)
            response = page.goto(base + "/internal/")
            assert response is not None and response.status == 403
            take("error-403")
            response = page.goto(base + "/.gateway/no-such-page")
            assert response is not None and response.status == 404
            take("error-404")
        sent = outbox_messages(data / "outbox.log")  # Frank's code, and each one's new app
        assert [m["to"] for m in sent] == [ALICE[0], FRANK[0], FRANK[0], CAROL[0]]
        for message in sent:
            words = f"{message['subject']}\n{message['text']}"
            assert not ENGLISH.search(words), words


def walk_errors(gallery: Gallery, browser: Browser, tmp: Path) -> None:
    """The error pages, to a stranger; and the demo's settings with its application down."""
    take = gallery.take
    with demo_in(tmp) as demo, new_page(browser) as page:
        base = demo.url
        response = page.goto(base + "/.gateway/no-such-page")
        assert response is not None and response.status == 404
        take(page, "error-404")
        response = page.goto(base + "/internal/")
        assert response is not None and response.status == 403
        take(page, "error-403")
        response = page.goto(base + "/.gateway/challenge")
        assert response is not None and response.status == 403
        heading(page, "Please sign in again")
        take(page, "error-sign-in-expired")
        app_sign_in(page, base, *ALICE)
        expect(page).to_have_url(ENROL_URL)
        page.locator("input[name=csrf_token]").first.evaluate("field => field.remove()")
        page.get_by_label("6-digit code").fill("123456")
        press(page, "Confirm and continue")
        heading(page, "This request cannot be handled")
        take(page, "error-400-form-expired")

        # the demo's settings with a step-up on the sign-out, a store of its own, while the
        # demo serves the application
        step_up = GatewayProcess.run(tmp, step_up_settings(tmp), name="step-up")
        try:
            with new_page(browser) as page:
                app_sign_in(page, step_up.url, *BOB)
                expect(page).to_have_url(ENROL_URL)
                press(page, "Remind me in 48 hours")
                expect_application_home(page, step_up.url, BOB[0])
                with page.expect_response(step_up.url + "/logout") as answer:
                    press(page, "Sign out")  # the application's form: a POST
                assert answer.value.status == 401
                heading(page, "Please confirm it is you")
                take(page, "error-401-step-up")
        finally:
            step_up.stop()

    # the demo's own settings, with nothing listening where its application was
    settings = yaml.safe_load((tmp / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    settings["listen"]["port"] = free_port()
    settings["applications"]["legacy"]["upstream"] = f"http://127.0.0.1:{free_port()}"
    down = GatewayProcess.run(tmp, settings, name="down")
    try:
        with new_page(browser) as page:
            response = page.goto(down.url + "/")
            assert response is not None and response.status == 502
            take(page, "error-502")
    finally:
        down.stop()


WALKS: dict[str, Callable[[Gallery, Browser, Path], None]] = {
    "acme": walk_acme,
    "passkey": walk_passkey,
    "globex": walk_globex,
    "errors": walk_errors,
    "languages": walk_languages,
}


# ---------------------------------------------------------------------------------------------
# The checks


@dataclass
class Walked:
    gallery: Gallery
    browser: Browser
    tmp: pytest.TempPathFactory
    failed: dict[str, str] = field(default_factory=dict)

    def shot(self, state: str) -> Shot:
        """The state's shot, walking its group first if no check has needed it yet."""
        group = GROUP_OF[state]
        if group not in self.failed and not any(s in self.gallery.shots for s, _ in GROUPS[group]):
            try:
                WALKS[group](self.gallery, self.browser, self.tmp.mktemp(group))
            except Exception as exc:
                self.failed[group] = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.gallery.write_index()
        if group in self.failed:
            pytest.fail(f"the walk of group {group!r} failed: {self.failed[group]}")
        if state not in self.gallery.shots:
            pytest.fail(f"group {group!r} did not take {state!r}")
        return self.gallery.shots[state]


@pytest.fixture(scope="module")
def walked(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Walked]:
    chosen = os.environ.get("GATEWAY_GALLERY_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    gallery = Gallery(folder.resolve())
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        """On the terminal, past pytest's capture."""
        if capture is None:
            print(line)
            return
        with capture.global_and_fixture_disabled():
            print(line)

    say(f"\npage gallery: {gallery.folder}")
    try:
        yield Walked(gallery, browser, tmp_path_factory)
    finally:
        index = gallery.write_index()
        say(f"\npage gallery: {index} ({len(gallery.shots)} of {len(STATES)} states)")


def with_known_bugs(check: str, per_width: bool) -> list[Any]:
    params = []
    for state in STATES:
        for width in widths_of(state) if per_width else (None,):
            known = KNOWN_BUGS.get((check, state, width))
            marks = []
            if known is not None:
                marks.append(pytest.mark.xfail(strict=True, raises=KnownBug, reason=known.bug))
            # the group first, so that `-k languages` (or acme, errors, ...) picks one group
            label = f"{GROUP_OF[state]}/{state}" + (f"@{width}px" if width else "")
            params.append(pytest.param(state, width, marks=marks, id=label))
    return params


@pytest.mark.parametrize(("state", "width"), with_known_bugs("axe", per_width=True))
def test_axe(walked: Walked, state: str, width: int) -> None:
    """axe-core finds no violation on the state at this width."""
    found = dict(walked.shot(state).axe[width])
    for rule in ACCEPTED.get(state, {}):
        found.pop(rule, None)
    known = KNOWN_BUGS.get(("axe", state, width))
    still = found.pop(known.rule, None) if known is not None and known.rule else None
    assert not found, f"{state} at {width} px:\n" + "\n".join(found.values())
    if still is not None:
        raise KnownBug(f"{state} at {width} px:\n{still}")


@pytest.mark.parametrize(("state", "width"), with_known_bugs("fits", per_width=True))
def test_fits(walked: Walked, state: str, width: int) -> None:
    """Nothing on the state is wider than a window this wide."""
    wide = walked.shot(state).overflow[width]
    if wide and ("fits", state, width) in KNOWN_BUGS:
        raise KnownBug("\n".join(wide))
    assert not wide, f"{state} at {width} px, wider than the window:\n" + "\n".join(wide)


@pytest.mark.parametrize(("state", "width"), with_known_bugs("links", per_width=False))
def test_links(walked: Walked, state: str, width: None) -> None:
    """Every same-origin link on the state answers below 400 to the person it was shown to."""
    dead = walked.shot(state).dead
    if dead and ("links", state, None) in KNOWN_BUGS:
        raise KnownBug("\n".join(dead))
    assert not dead, f"{state}: links that do not work:\n" + "\n".join(dead)


@pytest.mark.parametrize(
    "state", [pytest.param(state, id=f"languages/{state}") for state, _ in GROUPS["languages"]]
)
def test_speaks_its_language(walked: Walked, state: str) -> None:
    """A translated state says it is in its language (<html lang>), says the line every page
    has in it, and has no English left in its text: a string the pages forgot to translate
    fails here."""
    shot = walked.shot(state)
    lang = state.split("-", 1)[0]
    assert shot.lang == lang, f"{state}: <html lang={shot.lang!r}>"
    assert said(lang, "Two-step sign-in protects this site.") in shot.text, shot.text
    english = sorted({found.group(0) for found in ENGLISH.finditer(shot.text)})
    assert not english, f"{state}: English left on the page: {english}\n{shot.text}"


def test_every_state_has_both_widths_in_the_index(walked: Walked) -> None:
    """Every state is rendered at each width, and the index lists each PNG."""
    for state in STATES:
        walked.shot(state)
    index = walked.gallery.write_index().read_text(encoding="utf-8")
    for shot in walked.gallery.shots.values():
        for width in widths_of(shot.state):
            png = walked.gallery.folder / shot.pngs[width]
            assert png.stat().st_size > 0, png
            assert f'src="{shot.pngs[width]}"' in index, png
