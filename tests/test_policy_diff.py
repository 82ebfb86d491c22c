"""`gateway policy diff OLD NEW`: what a policy change would do to the users the store has seen
sign in, from the pure comparison (gateway.policy_diff) and through the command on a real SQLite
store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from gateway.decision import Outcome
from gateway.policy import Policy, load_policy_dir
from gateway.policy_diff import (
    ANY_METHOD,
    Kind,
    Place,
    SeenUser,
    Verdict,
    diff,
    sample_path,
    seen_user,
)
from gateway.policy_diff_report import text_lines
from gateway.store import SqliteStore
from gateway.store.base import Deferral, UserRecord
from tests.support import intercept_app, settings_dict

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()

ACME = """\
company: Acme Corporation
members:
  domains: [acme.example]
enforce_2fa: true
trusted_networks:
  networks: [10.0.0.0/8]
"""
GLOBEX = """\
company: Globex
members:
  domains: [globex.example]
enforce_2fa: {enforce}
deferral: 24h
{extra}"""
INITECH = """\
company: Initech Clients
members:
  domains: [initech.example]
account_type: client
{extra}"""
RULES = """\
applications:
  legacy:
    - paths: ["/public/**"]
      access: bypass
    - paths: ["/admin/**"]
      access: deny
    - paths: ["/status"]
      access: one_factor
"""
OLD = {
    "acme.yaml": ACME,
    "globex.yaml": GLOBEX.format(enforce="false", extra=""),
    "initech.yaml": INITECH.format(extra=""),
    "rules.yaml": RULES,
}

ALICE = SeenUser("alice@acme.example", "10.1.2.3", NOW - 3600, ("totp",))
GREG = SeenUser("greg@globex.example", "192.0.2.5", NOW - 3600, ("totp",))
GINA = SeenUser("gina@globex.example", None, NOW - 3600)  # not enrolled, no deferral
CAROL = SeenUser("carol@initech.example", "198.51.100.7", NOW - 3600, ("totp",))
USERS = [ALICE, GREG, GINA, CAROL]


def policy(tmp_path: Path, name: str, files: dict[str, str]) -> Policy:
    directory = tmp_path / name
    directory.mkdir()
    for file, text in files.items():
        (directory / file).write_text(text)
    return load_policy_dir(directory)


def changed(old: dict[str, str], **files: str) -> dict[str, str]:
    return {**old, **files}


def test_the_same_policy_changes_nothing(tmp_path: Path) -> None:
    old, new = policy(tmp_path, "old", OLD), policy(tmp_path, "new", OLD)
    assert diff(old, new, USERS, ["legacy"], now=NOW) == []


def test_a_new_deny_rule_denies_the_users_on_its_paths_only(tmp_path: Path) -> None:
    rules = RULES + '    - paths: ["/reports/**"]\n      access: deny\n'
    old, new = (
        policy(tmp_path, "old", OLD),
        policy(tmp_path, "new", changed(OLD, **{"rules.yaml": rules})),
    )
    found = diff(old, new, [ALICE, CAROL], ["legacy"], now=NOW)
    assert [d.user.user for d in found] == ["alice@acme.example", "carol@initech.example"]
    alice = found[0]
    assert alice.company_before == alice.company_after == "acme"
    [change] = alice.changes
    assert change.app == "legacy"
    assert change.places == (Place("/reports/x", "/reports/**", (ANY_METHOD,)),)
    assert str(change.places[0]) == "/reports/** (as /reports/x)"
    # alice is enrolled and comes from inside acme's trusted network: spared the challenge
    assert change.before == Verdict(Outcome.SKIP_TRUSTED)
    assert change.after == Verdict(Outcome.DENY)
    assert change.kind is Kind.DENY
    rules_file = tmp_path / "new" / "rules.yaml"
    assert change.reasons == (
        f"access two_factor (the two_factor default) -> deny ({rules_file}:9)",
    )
    assert found[1].changes[0].before == Verdict(Outcome.CHALLENGE)  # a client: never trusted


def test_a_method_scoped_rule_changes_that_method_only(tmp_path: Path) -> None:
    rules = RULES + '    - paths: ["/api/**"]\n      methods: [POST, DELETE]\n      access: deny\n'
    old, new = (
        policy(tmp_path, "old", OLD),
        policy(tmp_path, "new", changed(OLD, **{"rules.yaml": rules})),
    )
    [greg] = diff(old, new, [GREG], ["legacy"], now=NOW)
    [change] = greg.changes
    assert change.places == (Place("/api/x", "/api/**", ("POST", "DELETE")),)
    assert str(change.places[0]) == "/api/** (as /api/x) [POST, DELETE]"
    assert (change.before.outcome, change.after.outcome) == (Outcome.CHALLENGE, Outcome.DENY)


def test_one_factor_lets_through(tmp_path: Path) -> None:
    rules = RULES.replace('"/status"', '"/status", "/reports/*.pdf"')
    old, new = (
        policy(tmp_path, "old", OLD),
        policy(tmp_path, "new", changed(OLD, **{"rules.yaml": rules})),
    )
    [greg] = diff(old, new, [GREG], ["legacy"], now=NOW)
    [change] = greg.changes
    assert change.places == (Place("/reports/x.pdf", "/reports/*.pdf", (ANY_METHOD,)),)
    assert change.after == Verdict(Outcome.FORWARD) and change.kind is Kind.THROUGH


def test_enforcement_turned_on_newly_requires_a_second_factor(tmp_path: Path) -> None:
    globex = GLOBEX.format(enforce="true", extra="")
    old, new = (
        policy(tmp_path, "old", OLD),
        policy(tmp_path, "new", changed(OLD, **{"globex.yaml": globex})),
    )
    deferred = SeenUser(
        "dan@globex.example", None, NOW, (), Deferral("globex", NOW - 60, NOW + 3600)
    )
    found = {d.user.user: d for d in diff(old, new, [*USERS, deferred], ["legacy"], now=NOW)}
    assert set(found) == {"gina@globex.example", "dan@globex.example"}  # greg is enrolled
    gina = found["gina@globex.example"]
    # the two_factor paths only: "/" and the default; bypass, deny, one_factor paths stay
    assert [place.path for c in gina.changes for place in c.places] == ["/"]
    [change] = gina.changes
    assert change.before == Verdict(Outcome.ENROL, may_defer=True)
    assert change.after == Verdict(Outcome.ENROL)
    assert change.kind is Kind.SECOND_FACTOR
    assert "second factor newly required (enforce_2fa turned on)" in change.reasons
    assert "may no longer put enrolment off" in change.reasons
    dan = found["dan@globex.example"].changes[0]
    assert (dan.before.outcome, dan.after.outcome) == (Outcome.SKIP_DEFERRED, Outcome.ENROL)


def test_enforcement_turned_off_lets_them_put_it_off_unless_the_store_enforces(
    tmp_path: Path,
) -> None:
    old_files = changed(OLD, **{"globex.yaml": GLOBEX.format(enforce="true", extra="")})
    old, new = policy(tmp_path, "old", old_files), policy(tmp_path, "new", OLD)
    [gina] = diff(old, new, [GINA], ["legacy"], now=NOW)
    [change] = gina.changes
    assert change.after == Verdict(Outcome.ENROL, may_defer=True) and change.kind is Kind.SKIP
    assert "may now put it off (deferral of 24h)" in change.reasons
    # the ratchet: the store keeps globex enforced whatever the file says
    assert diff(old, new, [GINA], ["legacy"], enforced_keys={"globex"}, now=NOW) == []
    assert (
        diff(old, new, [GINA], ["legacy"], enforced_keys={"domain:globex.example"}, now=NOW) == []
    )


def test_a_shorter_deferral_ends_one_already_granted(tmp_path: Path) -> None:
    shorter = GLOBEX.format(enforce="false", extra="").replace("deferral: 24h", "deferral: 1h")
    old = policy(tmp_path, "old", OLD)
    new = policy(tmp_path, "new", changed(OLD, **{"globex.yaml": shorter}))
    granted = Deferral("globex", NOW - 7200, NOW - 7200 + 86400)
    dan = SeenUser("dan@globex.example", None, NOW, (), granted)
    [found] = diff(old, new, [dan], ["legacy"], now=NOW)
    [change] = found.changes
    assert change.before == Verdict(Outcome.SKIP_DEFERRED)
    assert change.after == Verdict(Outcome.ENROL, may_defer=True)
    assert change.reasons == ("the deferral the user chose now ends at 2026-12-06 11:00 UTC",)


def test_a_trusted_network_now_spares_the_challenge(tmp_path: Path) -> None:
    extra = "trusted_networks:\n  networks: [192.0.2.0/24, 198.51.100.0/24]\n"
    new_files = changed(
        OLD,
        **{
            "globex.yaml": GLOBEX.format(enforce="false", extra=extra),
            "initech.yaml": INITECH.format(extra=extra),
        },
    )
    old, new = policy(tmp_path, "old", OLD), policy(tmp_path, "new", new_files)
    found = diff(old, new, USERS, ["legacy"], now=NOW)
    # carol is a client (never spared), gina has no second factor to be spared
    assert [d.user.user for d in found] == ["greg@globex.example"]
    [change] = found[0].changes
    assert (change.before.outcome, change.after.outcome) == (
        Outcome.CHALLENGE,
        Outcome.SKIP_TRUSTED,
    )
    assert change.kind is Kind.SKIP
    assert change.reasons == (
        "trusted network 192.0.2.0/24 now spares the challenge from 192.0.2.5",
    )


def test_a_user_moved_to_another_company(tmp_path: Path) -> None:
    moved = ACME.replace(
        "  domains: [acme.example]\n", "  domains: [acme.example]\n  users: [greg@globex.example]\n"
    )
    old, new = (
        policy(tmp_path, "old", OLD),
        policy(tmp_path, "new", changed(OLD, **{"acme.yaml": moved})),
    )
    [greg] = diff(old, new, [GREG], ["legacy"], now=NOW)
    assert (greg.company_before, greg.company_after) == ("globex", "acme")
    assert greg.changes == ()  # 192.0.2.5 is in no network of acme's: still challenged
    lines = text_lines([greg], 1, "header")
    assert (
        "greg@globex.example (company globex -> acme; last second factor from 192.0.2.5)" in lines
    )
    assert "  no path is answered otherwise" in lines


def test_sample_paths() -> None:
    assert sample_path("/") == "/"
    assert sample_path("/admin/**") == "/admin/x"
    assert sample_path("/files/*.pdf") == "/files/x.pdf"
    assert sample_path("/a/**/b") == "/a/x/b"
    assert sample_path("/**") == "/x"
    assert sample_path("/exact") == "/exact"


def test_seen_user_skips_records_that_never_signed_in() -> None:
    admin_only = UserRecord("new@acme.example", "acme", NOW, {"name": "New"})
    assert seen_user(admin_only, [], None) is None
    signed = UserRecord(
        "a@acme.example", "acme", NOW, {"last_sign_in": NOW, "last_2fa_ip": "10.0.0.5"}
    )
    assert seen_user(signed, ["totp"], None) == SeenUser(
        "a@acme.example", "10.0.0.5", NOW, ("totp",)
    )


# -- through the command, on a real SQLite store ---------------------------------------------------


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def deployment(tmp_path: Path, new_files: dict[str, str]) -> tuple[Path, Path, Path]:
    """Settings whose policy directory is OLD, a NEW directory, and a store with users seen."""
    app = intercept_app("http://127.0.0.1:9", hosts=["legacy.example"])
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings_dict(tmp_path, {"legacy": app}, OLD)))
    new = tmp_path / "new"
    new.mkdir()
    for file, text in new_files.items():
        (new / file).write_text(text)

    async def fill() -> None:
        store = SqliteStore(tmp_path / "gateway.db")
        await store.open()
        try:
            await store.note_user("alice@acme.example", "acme", NOW, {"last_sign_in": NOW})
            await store.note_user("alice@acme.example", "acme", NOW, {"last_2fa_ip": "10.1.2.3"})
            await store.put_enrolment("alice@acme.example", "totp", {"created": NOW})
            facts = {"last_sign_in": NOW, "last_2fa": NOW, "last_2fa_ip": "192.0.2.5"}
            await store.note_user("greg@globex.example", "globex", NOW, facts)
            await store.put_enrolment("greg@globex.example", "totp", {"created": NOW})
            await store.note_user("gina@globex.example", "globex", NOW, {"last_sign_in": NOW})
            await store.note_user("never@globex.example", "globex", NOW, {"name": "Never"})
            await store.enforce("acme", NOW, "policy file")
        finally:
            await store.close()

    asyncio.run(fill())
    return config, tmp_path / "policies", new


def test_command_reports_the_changes_and_exits_3(tmp_path: Path) -> None:
    extra = "trusted_networks:\n  networks: [192.0.2.0/24]\n"
    rules = RULES + '    - paths: ["/reports/**"]\n      access: deny\n'
    new_files = changed(
        OLD,
        **{
            "globex.yaml": GLOBEX.format(enforce="false", extra=extra),
            # the store's ratchet keeps acme enforced: turning it off here changes nothing
            "acme.yaml": ACME.replace("enforce_2fa: true", "enforce_2fa: false"),
            "rules.yaml": rules,
        },
    )
    config, old, new = deployment(tmp_path, new_files)
    result = gateway("policy", "diff", str(old), str(new), "-c", str(config))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert out.splitlines()[0] == f"policy diff {old} -> {new}"
    assert "3 user(s) seen signing in; 3 affected by the change" in out  # never@ never signed in
    assert "greg@globex.example (company globex; last second factor from 192.0.2.5)" in out
    assert "  legacy: challenge -> skip_trusted on / (and any path no rule matches)\n" in out
    assert "      trusted network 192.0.2.0/24 now spares the challenge from 192.0.2.5" in out
    assert "  legacy: skip_trusted -> deny on /reports/** (as /reports/x)\n" in out
    assert "gina@globex.example (company globex; address not known)" in out
    assert "  legacy: enrol (may put it off) -> deny on /reports/** (as /reports/x)\n" in out
    assert "may now put it off" not in out  # acme stays enforced by the store
    assert out.splitlines()[-1] == (
        "newly asked for a second factor: 0 user(s); newly denied: 3 user(s); "
        "newly let skip the second factor: 1 user(s); newly let through: 0 user(s)"
    )

    as_json = gateway("policy", "diff", str(old), str(new), "-c", str(config), "--json")
    assert as_json.returncode == 3, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["users_seen"] == 3 and report["users_affected"] == 3
    assert report["kinds"] == {"second_factor": 0, "deny": 3, "skip": 1, "through": 0}
    greg = next(user for user in report["users"] if user["user"] == "greg@globex.example")
    assert greg["company_before"] == greg["company_after"] == "globex"
    root = next(change for change in greg["changes"] if change["places"][0]["path"] == "/")
    assert (root["from"], root["to"], root["kind"]) == ("challenge", "skip_trusted", "skip")
    assert root["places"] == [{"path": "/", "pattern": "(no rule)", "methods": ["any method"]}]
    assert root["reasons"] == [
        "trusted network 192.0.2.0/24 now spares the challenge from 192.0.2.5"
    ]


def test_command_without_changes_exits_0(tmp_path: Path) -> None:
    config, old, new = deployment(tmp_path, OLD)
    result = gateway("policy", "diff", str(old), str(new), "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "3 user(s) seen signing in; 0 affected by the change" in result.stdout


def test_command_with_a_broken_policy_directory_exits_1(tmp_path: Path) -> None:
    broken = changed(OLD, **{"globex.yaml": GLOBEX.format(enforce="maybe", extra="")})
    config, old, new = deployment(tmp_path, broken)
    result = gateway("policy", "diff", str(old), str(new), "-c", str(config))
    assert result.returncode == 1
    assert f"{new / 'globex.yaml'}:4: " in result.stderr and "enforce_2fa" in result.stderr
    assert "1 error(s) in" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    missing = gateway("policy", "diff", str(old), str(tmp_path / "nope"), "-c", str(config))
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_command_without_a_store_says_so(tmp_path: Path) -> None:
    config, old, new = deployment(tmp_path, OLD)
    (tmp_path / "gateway.db").unlink()
    result = gateway("policy", "diff", str(old), str(new), "-c", str(config))
    assert result.returncode == 1
    assert "no SQLite store" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "gateway.db").exists()
