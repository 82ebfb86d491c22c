"""`gateway intercept probe`: sign in to an application with a test account, twice (a wrong
password, then the right one, each as a new browser), and show the operator what its login
looks like: the form, the answers, their cookies, how the current `intercept:` settings judge
them, and a suggested `intercept:` block. It talks straight to the application (the upstream).

The password is only ever sent to the application: never printed, logged or stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from gateway.cookies import build_cookie_header
from gateway.identity.body_fields import query_fields
from gateway.identity.cookie_names import CookieNames
from gateway.identity.intercept import (
    Verdict,
    fields_match,
    is_login_target,
    judge,
    split_set_cookies,
)
from gateway.identity.whoami import MAX_ANSWER, WhoamiUnreadable, user_from_answer
from gateway.intercept_settings import Intercept
from gateway.probe_form import (
    field_line,
    guess_username_field,
    login_forms,
    submission,
    visible_path,
)
from gateway.probe_report import (
    WRONG_SUFFIX,
    Attempt,
    Page,
    Report,
    Target,
    changed_names,
    cookie_facts,
)
from gateway.probe_suggest import suggestion

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_PAGE = 2 * 1024 * 1024
NAME = "gateway intercept probe"


async def run_probe(target: Target, user: str, password: str) -> Report:
    """Load the login page and sign in with a wrong then the right password; what was seen."""
    report = Report(target, user)
    timeout = aiohttp.ClientTimeout(total=target.total_timeout, sock_connect=target.connect_timeout)
    try:
        report.wrong = await _attempt(report, timeout, user, password + WRONG_SUFFIX)
        if report.wrong is not None:
            report.right = await _attempt(report, timeout, user, password)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        report.error = f"cannot talk to {target.upstream}: {type(exc).__name__} {exc}".strip()
    return report


async def _attempt(
    report: Report, timeout: aiohttp.ClientTimeout, user: str, password: str
) -> Attempt | None:
    target = report.target
    origin = URL(target.upstream).origin()
    # its own jar, as a new browser; the application is treated as HTTPS, as behind the gateway
    jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False, treat_as_secure_origin=origin)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as session:
        page_url = URL(target.upstream + target.login_page, encoded=True)
        async with session.get(page_url, max_redirects=5) as answer:
            text = _text(await _read(answer, MAX_PAGE), answer.charset)
            steps = (*answer.history, answer)
            set_cookies = [line for s in steps for line in s.headers.getall("Set-Cookie", [])]
            here = str(answer.url)
            page = Page(str(page_url), here, answer.status, set_cookies, login_forms(text, here))
        if report.page is None:
            report.page = page
        if not page.forms:
            report.error = "no login form (a form with a password input) on the page"
            return None
        form = page.forms[0]
        if report.form is None:
            report.form = form
            configured = target.config.login.username_field if target.config else None
            report.username_field = (
                configured if configured and form.field(configured) else guess_username_field(form)
            )
        if URL(form.action).origin() != origin:
            report.error = (
                f"the form sends the password to another site ({URL(form.action).origin()}): "
                "the gateway sees only requests to the application, and the probe sends nothing "
                "there"
            )
            return None
        attempt = Attempt(page)
        attempt.sent = {n: m.value for n, m in jar.filter_cookies(URL(form.action)).items()}
        pairs = submission(form, report.username_field, user, password)
        headers = {"Referer": page.url, "Origin": str(origin)}
        body: aiohttp.FormData | str | None = None
        url = URL(form.action)
        if form.method == "GET":
            url = url.with_query(urlencode(pairs))
        elif form.enctype == "multipart/form-data":
            body = aiohttp.FormData(pairs, default_to_multipart=True)
        else:
            body = urlencode(pairs)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with session.request(
            form.method, url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            await _read(answer, MAX_PAGE)
            attempt.status = answer.status
            attempt.location = answer.headers.get("Location")
            attempt.set_cookies = answer.headers.getall("Set-Cookie", [])
        if target.config is not None and target.config.whoami is not None:
            await _ask_whoami(target, timeout, attempt)
    return attempt


async def _ask_whoami(target: Target, timeout: aiohttp.ClientTimeout, attempt: Attempt) -> None:
    """Ask whoami as the gateway does: server to server, with the cookies the login left."""
    assert target.config is not None and target.config.whoami is not None
    config = target.config.whoami
    headers: CIMultiDict[str] = CIMultiDict()
    headers["Accept"] = "application/json" if config.json else "text/html,*/*;q=0.8"
    jar = attempt.jar_after()
    if jar:
        headers["Cookie"] = build_cookie_header(list(jar.items()))
    url = URL(target.upstream + config.path, encoded=True)
    try:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout) as client,
            client.request(config.method, url, headers=headers, allow_redirects=False) as answer,
        ):
            body = await _read(answer, MAX_ANSWER + 1)
            attempt.whoami_status = answer.status
            if len(body) > MAX_ANSWER:
                raise WhoamiUnreadable(f"the whoami answer is longer than {MAX_ANSWER} bytes")
            attempt.whoami_user = user_from_answer(config, answer.status, answer.headers, body)
    except WhoamiUnreadable as exc:
        attempt.whoami_error = str(exc)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        attempt.whoami_error = f"whoami could not be asked: {type(exc).__name__} {exc}".strip()


async def _read(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """The answer's body, at most `limit` bytes of it."""
    body = bytearray()
    while len(body) < limit and (chunk := await answer.content.read(limit - len(body))):
        body += chunk
    return bytes(body)


def _text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Outcome:
    judged: Verdict  # judge() on the answer alone
    judged_reason: str
    verdict: Verdict  # the gateway's, once whoami has spoken
    reason: str


def outcome(config: Intercept, attempt: Attempt) -> Outcome:
    """How the gateway judges this login answer (gateway.handlers.entry.login_intercept._judge)."""
    split = split_set_cookies(config, attempt.set_cookies)
    has_whoami = config.whoami is not None
    judged = judge(
        config.login, attempt.status, attempt.location, split, attempt.sent, whoami=has_whoami
    )
    verdict, reason = judged.verdict, judged.reason
    if verdict is Verdict.SUCCESS and has_whoami:
        if attempt.whoami_error is not None:
            verdict, reason = Verdict.UNCLEAR, f"{reason}: {attempt.whoami_error}"
        elif attempt.whoami_user is None:
            verdict, reason = Verdict.FAILURE, f"{reason}: whoami says nobody is signed in"
    return Outcome(judged.verdict, judged.reason, verdict, reason)


def checks(report: Report) -> list[tuple[bool, str]]:
    """Each check of the current settings against what the probe saw: (passed, sentence)."""
    config, right, wrong, form = report.target.config, report.right, report.wrong, report.form
    if config is None or right is None or wrong is None or form is None:
        return []
    found: list[tuple[bool, str]] = []
    got = outcome(config, right)
    user = report.user.strip().lower()
    if got.verdict is not Verdict.SUCCESS:
        found.append((False, f"the right password is judged {got.verdict.name} ({got.reason})"))
    elif config.whoami is not None and right.whoami_user != user:
        found.append((False, f"whoami names {right.whoami_user}, not {user}"))
    else:
        named = f", and whoami names {user}" if config.whoami is not None else ""
        found.append((True, f"the right password is judged SUCCESS ({got.reason}){named}"))
    bad = outcome(config, wrong)
    found.append(
        (
            bad.verdict is Verdict.FAILURE,
            f"the wrong password is judged {bad.verdict.name} ({bad.reason})",
        )
    )
    only_right = [
        n
        for n in changed_names(right.set_cookies, right.sent)
        if n not in changed_names(wrong.set_cookies, wrong.sent)
    ]
    for name in only_right:
        said = f"{name}, given a new value by the successful login only,"
        if config.session_cookies.matches(name):
            found.append((True, f"{said} is a session cookie"))
        else:
            unbound = "if it signs someone in, the gateway would let it through"
            found.append((False, f"{said} is not matched by session_cookies: {unbound}"))
    seen = report.cookie_names()
    for pattern in config.session_cookies.patterns:
        matched = [name for name in seen if CookieNames([pattern]).matches(name)]
        found.append(
            (
                bool(matched),
                f'session_cookies "{pattern}" matches '
                + (", ".join(matched) if matched else "no cookie the application set"),
            )
        )
    path, query = visible_path(form.action, report.target.upstream)
    here = f"{form.method} {path}" + (f"?{query}" if query else "")
    login = config.login
    posted = [(f.name, f.value or "") for f in form.fields if f.name and not f.submit]
    if is_login_target(login, form.method, path) and fields_match(
        login.fields, query_fields(query) + posted
    ):
        found.append((True, f"the form's action {here} is the settings' login request"))
    else:
        wanted = f"{login.method} {login.path}"
        wanted += f" with {urlencode(login.fields)}" if login.fields else ""
        found.append((False, f"the form's action is {here}, the settings' login {wanted}"))
    if login.username_field is not None and form.field(login.username_field) is None:
        found.append((False, f'the form has no field "{login.username_field}" (username_field)'))
    return found


def render(report: Report, hide: Callable[[str], str] = str) -> list[str]:
    """The report as lines for the operator; `hide` scrubs every text the application chose."""
    target, config, form = report.target, report.target.config, report.form
    named = f" (application {target.app})" if target.app else ""
    lines = [f"probe of {target.upstream}{named}, as {hide(report.user)}", ""]
    if report.page is not None:
        lines.append(f"login page: GET {hide(report.page.url)}")
        if report.page.asked != report.page.url:
            lines.append(f"  redirected from {hide(report.page.asked)}")
        lines.append(f"  status: {report.page.status}")
        lines += _cookie_lines(report.page.set_cookies, None, None, hide)
    if form is not None:
        lines.append(f"login form: {form.method} {hide(form.action)} ({hide(form.enctype)})")
        if report.page is not None and len(report.page.forms) > 1:
            lines.append(f"  the page has {len(report.page.forms)} such forms: the first is used")
        lines += [f"  field: {hide(field_line(f))}" for f in form.fields]
        lines.append(f"  password field: {hide(form.password_field)}")
        if report.username_field is None:
            lines.append("  user name field: none (so the settings need account: or whoami)")
        else:
            why = "the last text or email input before the password"
            if config is not None and config.login.username_field == report.username_field:
                why = "the settings' username_field"
            lines.append(f"  user name field: {hide(report.username_field)} ({why})")
    wrong = f'wrong password (the right one + "{WRONG_SUFFIX}")'
    for title, attempt in ((wrong, report.wrong), ("right password", report.right)):
        if attempt is not None:
            lines += ["", f"{title}, in a new browser:", *_attempt_lines(attempt, config, hide)]
    if report.error is not None:
        lines += ["", f"the login could not be done: {hide(report.error)}"]
    found = checks(report)
    if found:
        lines += ["", f"checks of the settings of application {target.app}:"]
        lines += [("ok: " if passed else "FAIL: ") + hide(text) for passed, text in found]
        failed = sum(not passed for passed, _ in found)
        lines.append(f"{failed} of {len(found)} checks failed" if failed else "all checks passed")
    if form is not None and report.right is not None and report.wrong is not None:
        lines += ["", "suggested intercept: block (under the application in the settings):"]
        lines += [hide(line) for line in _suggested(report)]
    return lines


def _attempt_lines(
    attempt: Attempt, config: Intercept | None, hide: Callable[[str], str]
) -> list[str]:
    lines = [f"  cookies sent with the login: {hide(', '.join(attempt.sent)) or 'none'}"]
    lines.append(f"  status: {attempt.status}")
    lines.append(f"  Location: {hide(attempt.location) if attempt.location else 'none'}")
    lines += _cookie_lines(attempt.set_cookies, attempt.sent, config, hide)
    if config is None:
        return lines
    got = outcome(config, attempt)
    if config.whoami is None:
        return [*lines, f"  verdict: {got.verdict.name} ({hide(got.reason)})"]
    lines.append(f"  judged by the answer alone: {got.judged.name} ({hide(got.judged_reason)})")
    said = attempt.whoami_user or "nobody"
    if attempt.whoami_error is not None:
        said = f"unreadable: {attempt.whoami_error}"
    asked = f"{config.whoami.method} {hide(config.whoami.path)}"
    if attempt.whoami_status is not None:
        asked += f" answered {attempt.whoami_status}"
    lines.append(f"  whoami: {asked}: {hide(said)}")
    lines.append(f"  verdict with whoami: {got.verdict.name} ({hide(got.reason)})")
    return lines


def _cookie_lines(
    raw_lines: list[str],
    sent: dict[str, str] | None,
    config: Intercept | None,
    hide: Callable[[str], str],
) -> list[str]:
    if not raw_lines:
        return ["  no cookies set"]
    lines: list[str] = []
    for raw in raw_lines:
        facts = cookie_facts(raw)
        if facts is None:
            lines.append("  Set-Cookie: unreadable")
            continue
        if facts.deleting:
            what = "deletes it"
        elif sent is not None and sent.get(facts.name) == facts.value:
            what = "the value it was sent"
        else:
            what = "a new value"
        line = f"  Set-Cookie {facts.name}: {what}; {', '.join(facts.attributes)}"
        if config is not None:
            matched = config.session_cookies.matches(facts.name)
            line += "; a session cookie" if matched else "; not in session_cookies"
        lines.append(hide(line))
    return lines


def _suggested(report: Report) -> list[str]:
    assert report.form is not None and report.right is not None and report.wrong is not None
    path, query = visible_path(report.form.action, report.target.upstream)
    config = report.target.config
    return suggestion(
        method=report.form.method,
        path=path,
        query=parse_qsl(query, keep_blank_values=True),
        username_field=report.username_field,
        user=report.user,
        right=report.right.seen(),
        wrong=report.wrong.seen(),
        whoami=config.whoami if config is not None else None,
    )
