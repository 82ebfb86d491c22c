"""`gateway demo` as a new user meets it (issue 17, "The demo shows all of it"), over HTTP
against the real command in its own process: every account it prints signs in with its password
and reaches the enrolment page of the method it is there to show; recovery codes follow a first
enrolment; texts and calls go to the outbox (file and console); Globex's trusted network (this
machine) spares Grace a second challenge, never the client account; the admin pages open for
Acme's admin; the operator commands it prints work on its settings file and store; a busy port is a
clear message, with nothing left unclosed. The repository's policies/ is what the demo reads."""

from __future__ import annotations

import html
import re
import shlex
import socket
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from fnmatch import fnmatch
from pathlib import Path

import aiohttp
import pytest

from gateway.demo.run import (
    ACCOUNTS,
    LANDLINE,
    MOBILE,
    OUTBOX,
    POLICIES,
    SETTINGS,
    Account,
    demo_settings,
    policy_dir,
)
from gateway.policy import load_policy_dir
from tests.senders.fakes import outbox_messages
from tests.support import CSRF_RE, GatewayProcess, enrol_totp, free_port

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = [sys.executable, "-m", "gateway"]
APP_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
CHOOSE = re.compile(r'choose "([^"]+)"')
LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')
CODE = re.compile(r"\b([0-9]{6}|(?:[0-9], ){5}[0-9])\b")  # a text's code, or a call's
SENT = {"sms": "Enter the code we texted you", "voice": "Enter the code from our call"}
HEADINGS = {  # each method's enrolment page
    "totp": "Set up two-step sign-in",
    "webauthn": "Add a passkey",
    "sms": "Add your phone number",
    "voice": "Add your phone number",
    "email": "Email me a code",
}
BOB = next(account for account in ACCOUNTS if account.method == "sms")
DAN = next(account for account in ACCOUNTS if account.method == "voice")
FRANK = next(account for account in ACCOUNTS if account.user.startswith("frank@"))
GRACE = next(account for account in ACCOUNTS if account.user.startswith("grace@"))
ALICE = ACCOUNTS[0]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[GatewayProcess]:
    """`gateway demo --port P --data-dir tmp/demo`, its console in tmp/demo.log."""
    process = GatewayProcess.demo(tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar (cookies for IP addresses too), redirects not followed."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def console(tmp_path: Path) -> str:
    return (tmp_path / "demo.log").read_text(encoding="utf-8")


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "demo"


def action(command: list[str]) -> str:
    """ "users list", "policy check"...: the two words after the program."""
    at = next(i for i, word in enumerate(command) if word in ("users", "companies", "policy"))
    return " ".join(command[at : at + 2])


def printed_commands(tmp_path: Path) -> list[list[str]]:
    """The operator commands under "Operator commands" in the demo's banner."""
    lines = console(tmp_path).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Operator commands"))
    commands = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        commands.append(shlex.split(line))
    return commands


async def page(client: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with client.get(url, allow_redirects=False) as response:
        return response.status, await response.text()


async def app_sign_in(
    client: aiohttp.ClientSession, base: str, account: Account
) -> aiohttp.ClientResponse:
    """Legacy Billing's own login form, through the gateway; the answer to its POST."""
    status, form = await page(client, base + "/login")
    assert status == 200, form
    match = APP_CSRF.search(form)
    assert match, form
    data = {"csrf": match.group(1), "username": account.user, "password": account.password}
    answer = await client.post(base + "/login", data=data, allow_redirects=False)
    await answer.read()
    return answer


async def app_sign_out(client: aiohttp.ClientSession, base: str) -> None:
    """The application's own Sign out button (the gateway ends its session too)."""
    status, home = await page(client, base + "/")
    assert status == 200, home
    match = APP_CSRF.search(home)
    assert match, home
    async with client.post(base + "/logout", data={"csrf": match.group(1)}) as answer:
        assert answer.status == 200, await answer.text()  # on to the login form


async def past_recovery_codes(client: aiohttp.ClientSession, base: str, location: str) -> str:
    """The recovery codes shown after a first enrolment: ten of them; "continue" goes on to
    where the sign-in was going (returned)."""
    assert location.startswith("/.gateway/recovery"), location
    status, text = await page(client, base + location)
    assert status == 200, text
    assert "Save your recovery codes" in text
    assert len(re.findall(r"<li><code>", text)) == 10
    data = {"csrf_token": csrf(text), "continue": "1"}
    async with client.post(base + location, data=data, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]


async def enrol_by_phone(
    client: aiohttp.ClientSession, base: str, tmp_path: Path, account: Account, number: str
) -> str:
    """A first sign-in by text message or phone call (the account's method), the code read from
    the outbox as the phone would have it; through the recovery codes; returns where the
    gateway sends the account then."""
    login = await app_sign_in(client, base, account)
    assert login.status == 303, login.headers
    enrol = f"{base}/.gateway/enrol?method={account.method}&rd=%2F"
    status, text = await page(client, enrol)
    assert status == 200 and HEADINGS[account.method] in text, text
    form = {"csrf_token": csrf(text), "action": "number", "phone": number}
    async with client.post(enrol, data=form) as answer:
        text = await answer.text()
        assert SENT[account.method] in text, text
    sent = outbox_messages(data_dir(tmp_path) / OUTBOX)
    messages = [m for m in sent if m["channel"] == account.method]
    assert messages and messages[-1]["to"] == number.replace(" ", ""), sent
    found = CODE.search(messages[-1]["text"])
    assert found, messages[-1]
    form = {"csrf_token": csrf(text), "action": "verify", "code": re.sub(r"\D", "", found[1])}
    async with client.post(enrol, data=form, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()
        location = answer.headers["Location"]
    return await past_recovery_codes(client, base, location)


def csrf(text: str) -> str:
    match = CSRF_RE.search(text)
    assert match, text
    return match.group(1)


def test_the_banner_lists_the_accounts_where_messages_go_and_the_commands(
    demo: GatewayProcess, tmp_path: Path
) -> None:
    """Each account with its password and what it shows, the outbox, the passkey address, the
    operator commands on the settings file, and the access rule it names (which holds)."""
    text = console(tmp_path)
    for account in ACCOUNTS:
        assert re.search(rf"{re.escape(account.user)} +password {account.password}\n", text)
        for line in account.shows.format(passkey_url=f"http://localhost:{demo.port}/").split("\n"):
            assert line in text, line
    assert str(data_dir(tmp_path) / OUTBOX) in text
    assert f"http://localhost:{demo.port}/" in text
    commands = printed_commands(tmp_path)
    assert {action(c) for c in commands} >= {"users list", "users reset", "policy check"}
    assert all(str(data_dir(tmp_path) / SETTINGS) in c for c in commands)
    assert f"{demo.url}/internal/ is refused by an access rule" in text
    with urllib.request.urlopen(f"{demo.url}/static/legacy.css") as response:  # noqa: S310
        assert response.status == 200  # bypass: no sign-in
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{demo.url}/internal/")  # noqa: S310
    assert refused.value.code == 403


def test_the_accounts_are_one_per_method_with_an_admin_and_a_client() -> None:
    policy = load_policy_dir(POLICIES, known_apps=["legacy"])
    shown = {account.method for account in ACCOUNTS}
    assert shown == {"totp", "webauthn", "sms", "voice", "email"}
    companies = [policy.company_for(account.user) for account in ACCOUNTS]
    assert all(company is not None for company in companies)
    for account, company in zip(ACCOUNTS, companies, strict=True):
        assert company is not None and account.method in company.methods, account
    assert any(account.user in c.admins for account in ACCOUNTS for c in policy.companies)
    assert any(c is not None and c.account_type == "client" for c in companies)
    assert all("recovery" in company.methods for company in policy.companies)
    assert any(not c.enforce_2fa and c.deferral for c in policy.companies)  # deferral shown


async def test_every_account_reaches_the_enrolment_page_of_its_method(
    demo: GatewayProcess,
) -> None:
    """Each account's password is right, and the enrolment page offers its method under the
    name the banner tells people to choose (passkeys on localhost, as the banner says)."""
    for account in ACCOUNTS:
        host = "localhost" if account.method == "webauthn" else "127.0.0.1"
        base = f"http://{host}:{demo.port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            login = await app_sign_in(client, base, account)
            assert login.status == 303, (account.user, login.headers)
            location = login.headers["Location"]
            assert location.startswith("/.gateway/enrol"), (account.user, location)
            status, text = await page(client, base + location)
            assert status == 200, text
            # Globex does not enforce 2FA: its people may put it off; Acme and Initech enforce
            deferral = "Remind me in 48 hours" in text
            assert deferral == account.user.endswith("@globex.example"), account.user
            choose = CHOOSE.search(account.shows)
            if choose is not None:  # not the company's default: one click away
                links = {html.unescape(label): url for url, label in LINK.findall(text)}
                assert choose.group(1) in links, (account.user, links)
                url = html.unescape(links[choose.group(1)])
                assert f"method={account.method}" in url, url
                status, text = await page(client, base + url)
                assert status == 200, text
            assert HEADINGS[account.method] in text, (account.user, text)


async def test_recovery_codes_follow_the_first_enrolment_and_the_admin_sees_the_company(
    demo: GatewayProcess, client: aiohttp.ClientSession
) -> None:
    base = demo.url
    login = await app_sign_in(client, base, ALICE)
    _, answer = await enrol_totp(client, base + login.headers["Location"])
    assert await past_recovery_codes(client, base, answer.headers["Location"]) == "/"
    status, text = await page(client, base + "/")
    assert status == 200 and f"Welcome, {ALICE.user}" in text

    status, _ = await page(client, base + "/.gateway/admin/")
    assert status == 303
    status, text = await page(client, base + "/.gateway/admin/acme/")
    assert status == 200, text
    assert ALICE.user in text
    status, text = await page(client, base + "/.gateway/admin/globex/")
    assert status in (403, 404), text


async def test_texts_go_to_the_outbox_file_and_the_console(
    demo: GatewayProcess, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Bob's text to his mobile, and Dan's call to his landline, are in <data-dir>/outbox.log
    and on the console; their codes enrol them."""
    assert await enrol_by_phone(client, demo.url, tmp_path, BOB, MOBILE) == "/"
    assert f"outbox: sms to {MOBILE.replace(' ', '')}" in console(tmp_path)
    status, text = await page(client, demo.url + "/")
    assert status == 200 and f"Welcome, {BOB.user}" in text
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        assert await enrol_by_phone(other, demo.url, tmp_path, DAN, LANDLINE) == "/"
    assert f"outbox: voice to {LANDLINE.replace(' ', '')}" in console(tmp_path)


async def enrol_by_app_and_sign_in_again(
    client: aiohttp.ClientSession, base: str, account: Account
) -> str:
    """A first sign-in with an authenticator app (and past the recovery codes), the
    application's Sign out, and a second sign-in: where the gateway sends it then."""
    login = await app_sign_in(client, base, account)
    _, answer = await enrol_totp(client, base + login.headers["Location"])
    assert await past_recovery_codes(client, base, answer.headers["Location"]) == "/"
    await app_sign_out(client, base)
    again = await app_sign_in(client, base, account)
    assert again.status in (302, 303), again.headers
    return again.headers["Location"]


async def test_a_trusted_network_spares_a_partner_a_second_challenge(
    demo: GatewayProcess, client: aiohttp.ClientSession
) -> None:
    """Grace of Globex, from this machine (one of Globex's trusted networks), is not asked for
    a code at her second sign-in."""
    assert await enrol_by_app_and_sign_in_again(client, demo.url, GRACE) == "/"
    status, text = await page(client, demo.url + "/")
    assert status == 200 and f"Welcome, {GRACE.user}" in text


async def test_a_client_account_is_asked_at_every_sign_in(
    demo: GatewayProcess, client: aiohttp.ClientSession
) -> None:
    """Initech lists this machine as a trusted network too: no difference for its clients."""
    location = await enrol_by_app_and_sign_in_again(client, demo.url, FRANK)
    assert location.startswith("/.gateway/challenge"), location


async def test_the_operator_commands_it_prints_work_on_its_settings(
    demo: GatewayProcess, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """users list, show and reset, companies status, policy check and explain, exactly as
    printed (reset with --yes, not being on a terminal), on the running demo's store."""
    settings = data_dir(tmp_path) / SETTINGS
    assert settings.is_file()
    await enrol_by_phone(client, demo.url, tmp_path, BOB, MOBILE)
    outputs = {}
    for command in printed_commands(tmp_path):
        name = action(command)
        if name == "users reset":
            command = [*command, "--yes"]  # it asks for a confirmation on a terminal
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        outputs[name] = done.stdout
    assert set(outputs) >= {"users list", "users show", "users reset", "policy check"}
    assert BOB.user in outputs["users list"] and "sms" in outputs["users list"]
    assert "acme" in outputs["companies status"] and "initech" in outputs["companies status"]
    assert "valid" in outputs["policy check"]
    assert "initech" in outputs["policy explain"]

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as again:
        login = await app_sign_in(again, demo.url, BOB)  # reset: he enrols again
        assert login.headers["Location"].startswith("/.gateway/enrol"), login.headers


def test_a_busy_port_is_a_clear_message_with_nothing_left_unclosed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*GATEWAY, "demo", "--port", str(port), "--data-dir", str(tmp_path / "busy")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert "--port" in done.stderr
    assert "Unclosed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "busy").exists(), "nothing is written before the port is known free"


def test_the_checkout_policies_are_the_ones_the_package_ships() -> None:
    """policies/ at the top of the repository is the demo's (a link to the package's copy), so
    editing policies/acme.yaml changes the demo; the wheel's package data holds every file."""
    assert (ROOT / "policies").resolve() == POLICIES.resolve()
    assert policy_dir() == ROOT / "policies"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gateway"]
    files = sorted(POLICIES.glob("*.yaml"))
    assert len(files) >= 4
    for file in files:
        inside = file.relative_to(ROOT / "gateway").as_posix()
        assert any(fnmatch(inside, pattern) for pattern in patterns), inside


def test_a_data_dir_used_again_keeps_its_secrets(tmp_path: Path) -> None:
    """So a second `gateway demo --data-dir D` can still read the enrolments of the first."""
    first = demo_settings(tmp_path, free_port(), free_port(), "127.0.0.1")
    keys = {name: (tmp_path / name).read_text() for name in ("session-keys", "encryption-key")}
    second = demo_settings(tmp_path, free_port(), free_port(), "127.0.0.1")
    assert first["secrets"] == second["secrets"]
    assert keys == {name: (tmp_path / name).read_text() for name in keys}
    assert all(oct((tmp_path / name).stat().st_mode)[-3:] == "600" for name in keys)
