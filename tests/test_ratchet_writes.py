"""The ratchet after a reload writes only what the store does not hold yet: a policy of a
thousand enforced companies made five thousand writes on the event loop at every reload
(issue 20 part 3), each request waiting through them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from gateway.enforcement import apply_ratchet
from gateway.policy.loader import load_policy_dir
from gateway.store import open_store

NOW = 1_700_000_000.0


def company(number: int) -> str:
    return (
        f"company: C{number}\nmembers:\n  domains: [c{number}.example]\n"
        f"  users: [x{number}@other.example]\nenforce_2fa: true\n"
    )


async def test_a_second_ratchet_writes_nothing_and_a_lifted_company_is_written_again(
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    for number in range(3):
        (policies / f"c{number}.yaml").write_text(company(number))
    policy = load_policy_dir(policies)
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=FixedClock(NOW))
    await store.open()
    writes: list[str] = []
    real = store.enforce

    async def counted(key: str, at: float, source: str) -> Any:
        writes.append(key)
        return await real(key, at, source)

    store.enforce = counted  # type: ignore[method-assign]
    try:
        assert await apply_ratchet(policy, store, NOW) == []
        assert len(writes) == 3 * 3  # each company, its domain and its user
        before = (await store.enforced_companies(), await store.enforced_members())
        writes.clear()
        assert await apply_ratchet(policy, store, NOW + 60) == []
        assert writes == []
        assert (await store.enforced_companies(), await store.enforced_members()) == before
        assert await store.lift_enforcement("c1")
        assert await apply_ratchet(policy, store, NOW + 120) == []
        assert writes == ["c1", "domain:c1.example", "user:x1@other.example"]
        assert (await store.enforced_companies())["c1"] == NOW + 120
    finally:
        await store.close()


def test_the_claims_index_answers_what_the_scan_answers() -> None:
    """conflicts() finds who claims each enforced member through an index built once; it
    answers exactly what a scan of every company answers, in the same order."""
    from gateway.enforcement import _claimants, _Claims
    from gateway.policy.model import AccountType, Company, Policy

    domains = [f"d{n}.example" for n in range(6)]
    companies = []
    for number in range(14):  # overlapping claims: the same domain, addresses in others' domains
        own = tuple(domains[(number * k) % 6] for k in range(number % 3))
        users = tuple(
            f"u{(number + k) % 10}@{domains[(number * 5 + k) % 6]}" for k in range(number % 4)
        )
        groups = tuple(("staff", "ops", "x")[(number + k) % 3] for k in range(number % 3))
        companies.append(
            Company(f"c{number}", f"C{number}", "", own, users, AccountType.PARTNER, (), groups)
        )
    policy = Policy(tuple(companies))
    claims = _Claims(policy)
    keys = [("domain", d) for d in domains] + [("group", g) for g in ("staff", "ops", "x", "y")]
    keys += [("user", f"u{n}@{d}") for n in range(10) for d in domains]
    assert any(len(claims.of("domain", d)) > 1 for d in domains)
    for kind, member in keys:
        assert claims.of(kind, member) == _claimants(policy, kind, member), (kind, member)


async def test_a_reload_that_keeps_every_company_reads_no_store(tmp_path: Path) -> None:
    """The loader keeps an unchanged file's Company; a reload of access rules alone has nothing
    to record, so the ratchet neither reads the store nor walks the companies. A company's file
    changed: the whole ratchet runs, and writes again a record the operator lifted meanwhile."""
    from gateway.enforcement import PolicyRatchet

    policies = tmp_path / "policies"
    policies.mkdir()
    for number in range(3):
        (policies / f"c{number}.yaml").write_text(company(number))
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=FixedClock(NOW))
    await store.open()
    reads: list[str] = []
    real = store.enforced_companies

    async def counted() -> Any:
        reads.append("companies")
        return await real()

    store.enforced_companies = counted  # type: ignore[method-assign]
    ratchet = PolicyRatchet(store, lambda: NOW)
    try:
        await ratchet(load_policy_dir(policies))
        assert reads and await store.enforced_since("c1") == NOW
        reads.clear()
        (policies / "access.yaml").write_text("applications: {}\n")  # a new access file only
        await ratchet(load_policy_dir(policies))
        assert reads == []
        assert await store.lift_enforcement("c1")
        await ratchet(load_policy_dir(policies))
        assert reads == [] and await store.enforced_since("c1") is None
        (policies / "c2.yaml").write_text(company(2) + "deferral: 24h\n")
        await ratchet(load_policy_dir(policies))
        assert reads and await store.enforced_since("c1") == NOW
    finally:
        await store.close()
