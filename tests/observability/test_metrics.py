"""/.gateway/metrics after real flows, read with Prometheus's text parser: requests by decision,
challenge answers, failures and lockouts, reloads, upstream and store latency; who may read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from gateway.clock import FixedClock
from gateway.keys import RUNTIME
from tests.observability.conftest import PASSWORD, USER, scrape, value
from tests.support import code_for, csrf_from_page, portal_app, portal_login, secret_from_page

T0 = 1_800_000_000.0
STRICT = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
attempts: {per_user_and_address: 3, per_user: 5, per_address: 10}
"""
ACCESS = """
applications:
  app:
    - paths: ["/public/**"]
      access: bypass
    - paths: ["/closed/**"]
      access: deny
"""


async def _gateway(make_gateway: Any, upstream: TestServer, users: Path, **extra: Any) -> Any:
    return await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": STRICT, "access.yaml": ACCESS},
        **extra,
    )


async def _challenge_page(client: Any) -> str:
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    page = await client.get("/.gateway/challenge?method=totp&rd=%2F")
    return csrf_from_page(await page.text())


async def _answer(client: Any, token: str, code: str) -> int:
    answer = await client.post(
        "/.gateway/challenge?method=totp&rd=%2F",
        data={"csrf_token": token, "code": code},
        allow_redirects=False,
    )
    return answer.status


async def test_flows_move_the_counters(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    """Sign-in, enrolment, a verified request (forward), a wrong and a replayed code, a lockout,
    bypass and deny routes: each shows in its series; upstream and store latency are observed."""
    clock = FixedClock(T0)
    client = await _gateway(make_gateway, upstream, users, clock=clock)
    before = await scrape(client)
    assert value(before, "gateway_requests_total", application="app", decision="forward") == 0

    anonymous = await client.get("/", allow_redirects=False)
    assert anonymous.status == 303  # to the login page
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    page = await client.get("/.gateway/enrol?method=totp&rd=%2F")
    html = await page.text()
    secret = secret_from_page(html)
    enrolled = await client.post(
        "/.gateway/enrol?method=totp&rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        allow_redirects=False,
    )
    assert enrolled.status == 303
    for _ in range(2):
        assert (await client.get("/invoices")).status == 200
    assert (await client.get("/public/logo.png")).status == 200
    assert (await client.get("/closed/x")).status == 403

    client.session.cookie_jar.clear()  # a new browser: the replayed code, then wrong ones
    token = await _challenge_page(client)
    assert await _answer(client, token, code_for(secret, at=clock.now)) == 401  # replay
    assert await _answer(client, token, "000000") == 401
    assert await _answer(client, token, "000001") == 429  # the third: locked out

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_requests_total", application="app", decision="forward") == 2
    assert moved("gateway_requests_total", application="app", decision="login") == 1
    assert moved("gateway_requests_total", application="app", decision="bypass") == 1
    assert moved("gateway_requests_total", application="app", decision="deny") == 1
    assert moved("gateway_enrolments_total", method="totp", outcome="ok") == 1
    assert moved("gateway_challenges_total", method="totp", outcome="replay") == 1
    assert moved("gateway_challenges_total", method="totp", outcome="wrong") == 2
    assert moved("gateway_challenges_total", method="totp", outcome="ok") == 0
    assert moved("gateway_failures_total", kind="second_factor") == 3
    assert moved("gateway_failures_total", kind="password") == 0
    assert moved("gateway_lockouts_total", scope="user_ip") == 1
    # forwarded: two verified requests and the bypass route
    assert moved("gateway_upstream_latency_seconds_count", application="app") == 3
    assert value(after, "gateway_upstream_latency_seconds_sum", application="app") > 0
    assert (
        value(after, "gateway_upstream_latency_seconds_bucket", application="app", le="+Inf") == 3
    )
    assert moved("gateway_store_latency_seconds_count", operation="get_session") >= 2
    assert moved("gateway_store_latency_seconds_count", operation="record_failure") >= 3
    assert moved("gateway_store_errors_total", operation="get_session") == 0

    # a right code from an address that is locked out is not even checked
    client.session.cookie_jar.clear()
    clock.advance(30)
    refused = await portal_login(client, USER, PASSWORD)
    assert refused.status == 429
    latest = await scrape(client)
    assert value(latest, "gateway_challenges_total", method="totp", outcome="ok") == 0


async def test_a_lockout_refuses_answers_of_a_pending_sign_in(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    """A second browser whose sign-in was pending when the lockout began has its answer
    refused unread: counted as locked_out."""
    client = await _gateway(make_gateway, upstream, users)
    runtime = client.app[RUNTIME]
    await runtime.store.put_enrolment(
        USER,
        "totp",
        {
            "secret": runtime.secrets.cipher.encrypt(
                "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", f"totp:{USER}"
            )
        },
    )
    token = await _challenge_page(client)
    first_browser = {m.key: m.value for m in client.session.cookie_jar}
    client.session.cookie_jar.clear()
    other = await _challenge_page(client)
    for code in ("000000", "000001", "000002"):
        await _answer(client, other, code)
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(first_browser)
    assert await _answer(client, token, "123456") == 429
    samples = await scrape(client)
    assert value(samples, "gateway_challenges_total", method="totp", outcome="locked_out") == 1
    assert value(samples, "gateway_lockouts_total", scope="user_ip") == 1


async def test_policy_reloads_and_generation(
    make_gateway: Any, upstream: TestServer, users: Path, tmp_path: Path
) -> None:
    """An accepted and a refused reload each count; the generation and the "files on disk are
    refused" gauge follow."""
    client = await _gateway(make_gateway, upstream, users)
    reloader = client.app[RUNTIME].reloader
    assert reloader is not None
    samples = await scrape(client)
    assert value(samples, "gateway_policy_generation") == 1
    assert value(samples, "gateway_policy_reloads_total", result="accepted") == 0
    (tmp_path / "policies" / "other.yaml").write_text(
        "company: Other\nmembers:\n  domains: [other.example]\n"
    )
    assert await reloader.reload_now("test")
    (tmp_path / "policies" / "broken.yaml").write_text("company: [\n")
    assert not await reloader.reload_now("test")
    samples = await scrape(client)
    assert value(samples, "gateway_policy_reloads_total", result="accepted") == 1
    assert value(samples, "gateway_policy_reloads_total", result="refused") == 1
    assert value(samples, "gateway_policy_generation") == 2
    assert value(samples, "gateway_policy_reload_failing") == 1
    (tmp_path / "policies" / "broken.yaml").unlink()
    assert await reloader.reload_now("test")
    assert value(await scrape(client), "gateway_policy_reload_failing") == 0


async def test_store_errors_are_counted(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    """With the store gone, the failing operation is counted (and timed)."""
    client = await _gateway(make_gateway, upstream, users)
    await client.app[RUNTIME].store.close()
    denied = await client.get("/", headers={"Cookie": "gateway_session=abc"})
    assert denied.status == 503
    samples = await scrape(client)
    assert value(samples, "gateway_store_errors_total", operation="get_session") == 1
    assert value(samples, "gateway_store_latency_seconds_count", operation="get_session") == 1


async def test_each_gateway_counts_its_own(
    make_gateway: Any, upstream: TestServer, users: Path, tmp_path: Path
) -> None:
    """Two gateways in one process have separate registries."""
    one = await _gateway(make_gateway, upstream, users)
    two = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)}, store=f"sqlite://{tmp_path}/2.db"
    )
    assert (await one.get("/public/x")).status == 200
    assert (
        value(await scrape(one), "gateway_requests_total", application="app", decision="bypass")
        == 1
    )
    assert (
        value(await scrape(two), "gateway_requests_total", application="app", decision="bypass")
        == 0
    )


async def test_who_may_read_the_metrics(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    """By default only this machine; `metrics.networks` names others, judged on the client
    address as computed through trusted proxies; any Host is answered."""
    local = await _gateway(make_gateway, upstream, users)
    assert (await local.get("/.gateway/metrics", headers={"Host": "unknown.example"})).status == 200
    proxied = await _gateway(make_gateway, upstream, users, trusted_proxies=["127.0.0.1/32"])
    outside = await proxied.get("/.gateway/metrics", headers={"X-Forwarded-For": "192.0.2.9"})
    assert outside.status == 403
    assert "metrics.networks" in await outside.text()
    inside = await _gateway(
        make_gateway,
        upstream,
        users,
        trusted_proxies=["127.0.0.1/32"],
        metrics={"networks": ["10.0.0.0/8"]},
    )
    assert (await inside.get("/.gateway/metrics")).status == 403  # no X-Forwarded-For: unknown
    await scrape(inside, **{"X-Forwarded-For": "10.1.2.3"})
    refused = await inside.get("/.gateway/metrics", headers={"X-Forwarded-For": "11.1.2.3"})
    assert refused.status == 403
