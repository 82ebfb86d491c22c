"""No user enumeration by message or by timing on the login and challenge pages. The cost of an
answer is the CPU time this process (the test client and the in-process gateway, its worker
threads included) spends on it, not the wall-clock time: on a loaded machine a request that is
preempted for a scheduler tick (4 ms) would otherwise look like different work. Interleaved
pairs, compared by their medians."""

from __future__ import annotations

import re
import secrets
import statistics
import time

import pytest

from gateway.clock import FixedClock
from tests.security.conftest import SSO_HEADER, USER, Client
from tests.security.test_open_redirect import enrolled_header_user
from tests.support import code_for, csrf_from_page

UNKNOWN = "nobody@example.com"
WINDOW = 16 * 60  # past attempts.window: earlier failures no longer delay the next answer
PAIRS = 15


def normalised(html: str, user: str) -> str:
    html = html.replace(user, "USER")
    html = re.sub(r'nonce[-=]"?[\w-]+', "NONCE", html)
    return re.sub(r'name="csrf_token" value="\w+"', "CSRF", html)


async def login(client: Client, user: str) -> tuple[int, str, float]:
    token = csrf_from_page(await (await client.get("/.gateway/login")).text())
    started = time.process_time()
    answer = await client.post(
        "/.gateway/login",
        data={"csrf_token": token, "username": user, "password": "not-the-password"},
        allow_redirects=False,
    )
    body = await answer.text()
    return answer.status, normalised(body, user), time.process_time() - started


def assert_same_cost(samples: dict[str, list[float]]) -> None:
    """Medians within a factor of 2: a skipped password hash would be 10x or more apart."""
    medians = {name: statistics.median(values) for name, values in samples.items()}
    fast, slow = sorted(medians.values())
    assert slow < 2 * fast, medians


async def test_login_messages_are_the_same_through_delay_and_lockout(portal: Client) -> None:
    """Twelve wrong answers for a known user and for an unknown one: the same statuses and the
    same pages, through the free tries, the delays and the lockout."""
    known = [(await login(portal, USER))[:2] for _ in range(12)]
    unknown = [(await login(portal, UNKNOWN))[:2] for _ in range(12)]
    assert [s for s, _ in known] == [s for s, _ in unknown]
    assert {s for s, _ in known} >= {401, 429}
    for (_, a), (_, b) in zip(known, unknown, strict=True):
        assert a == b


async def test_login_timing(portal: Client, clock: FixedClock) -> None:
    """Known user with a wrong password against unknown user: the same work, the same time,
    also with a users file whose hashes were not made with the gateway's own parameters."""
    samples: dict[str, list[float]] = {USER: [], UNKNOWN: []}
    for _ in range(PAIRS):
        pair = [USER, UNKNOWN]
        secrets.SystemRandom().shuffle(pair)
        for user in pair:
            clock.advance(WINDOW)
            status, _, took = await login(portal, user)
            assert status == 401
            samples[user].append(took)
    assert_same_cost(samples)


async def challenge_answer(header: Client, code: str) -> tuple[int, str, float]:
    """A new pending session of USER (header mode), then one answer on the challenge page."""
    header.session.cookie_jar.clear()
    await header.get("/", headers={SSO_HEADER: USER}, allow_redirects=False)
    page = await header.get("/.gateway/challenge", headers={SSO_HEADER: USER})
    token = csrf_from_page(await page.text())
    started = time.process_time()
    answer = await header.post(
        "/.gateway/challenge",
        data={"csrf_token": token, "code": code},
        headers={SSO_HEADER: USER},
        allow_redirects=False,
    )
    body = await answer.text()
    return answer.status, normalised(body, USER), time.process_time() - started


async def test_challenge_wrong_replayed_and_expired_codes_look_alike(
    header: Client, clock: FixedClock
) -> None:
    """On the challenge page a wrong code and an expired code get the same answer; a code
    already used gets its own fixed page ("wait for a new code", for the real user whose
    authenticator has not moved on yet), in the same time as a wrong one."""
    secret = await enrolled_header_user(header, USER)
    samples: dict[str, list[float]] = {"replayed": [], "wrong": []}
    pages: dict[str, set[tuple[int, str]]] = {"replayed": set(), "wrong": set(), "expired": set()}
    for index in range(PAIRS):
        clock.advance(WINDOW)
        used = code_for(secret, clock.now)
        status, _, _ = await challenge_answer(header, used)  # right: failures forgotten
        assert status == 303
        expired = code_for(secret, clock.now - 300)
        wrong = next(c for c in ("000000", "111111", "222222") if c not in (used, expired))
        kinds: list[tuple[str, str]] = [("replayed", used), ("wrong", wrong)]
        secrets.SystemRandom().shuffle(kinds)
        if index % 5 == 0:
            kinds.append(("expired", expired))
        for kind, code in kinds:
            status, body, took = await challenge_answer(header, code)
            pages[kind].add((status, body))
            if kind in samples:
                samples[kind].append(took)
    assert len(pages["wrong"]) == 1, "a wrong answer always gets the same page"
    assert len(pages["replayed"]) == 1
    assert pages["expired"] == pages["wrong"]
    assert_same_cost(samples)


def test_the_statistic_tells_a_skipped_hash_from_noise() -> None:
    """The comparison passes equal work in any order and fails a 15x gap (a skipped hash)."""
    fast = [0.010 + 0.001 * (i % 3) for i in range(PAIRS)]
    slow = [0.150 + 0.002 * (i % 4) for i in range(PAIRS)]
    assert_same_cost({"a": fast, "b": list(reversed(fast))})
    with pytest.raises(AssertionError):
        assert_same_cost({"fast": fast, "slow": slow})
