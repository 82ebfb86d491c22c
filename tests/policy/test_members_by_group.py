"""Members by group in company policy files: read and checked by the loader (and so by
`gateway policy check`), used by Policy.company_for only after a user's own name and domain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.enforcement import apply_ratchet, is_enforced
from gateway.policy import check_policy_dir, load_policy_dir
from gateway.store import SqliteStore

REPO = Path(__file__).resolve().parents[2]


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def test_a_company_of_groups_only_and_the_order_of_lookups(tmp_path: Path) -> None:
    """Groups are compared without case; a listed user or a domain wins over a group."""
    policy = load_policy_dir(
        write(
            tmp_path,
            ops="company: Ops\nmembers:\n  groups: [Admins, sre]\n",
            acme="company: Acme\nmembers:\n  domains: [acme.example]\n  users: [carol]\n",
        )
    )
    ops = policy.company_by_id("ops")
    assert ops is not None and ops.groups == ("admins", "sre")
    assert policy.company_for("alice", ["staff", "ADMINS"]) is ops
    assert policy.company_for("alice", ["staff"]) is None
    assert policy.company_for("alice") is None  # a YAML users file without groups: unchanged
    assert policy.company_for("carol", ["sre"]).id == "acme"  # type: ignore[union-attr]
    assert policy.company_for("bob@acme.example", ["sre"]).id == "acme"  # type: ignore[union-attr]


def test_group_errors_are_reported_with_file_and_line(tmp_path: Path) -> None:
    errors = check_policy_dir(
        write(
            tmp_path,
            a="company: A\nmembers:\n  groups: [admins, 'x,y']\n",
            b="company: B\nmembers:\n  groups: [Admins]\n",
        )
    )
    messages = {(Path(e.file).name, e.line, e.message) for e in errors}
    assert ("a.yaml", 3, '"x,y" is not a group name (no commas or control characters)') in messages
    assert any(
        name == "b.yaml" and 'group "admins" is already claimed by company "A"' in message
        for name, _, message in messages
    ), messages


def test_a_member_name_with_an_invisible_character_is_refused(tmp_path: Path) -> None:
    """Review finding: "\ufeffcontractors" looked like the group another company claims, and
    libyaml drops a byte-order mark where PyYAML keeps it, so the file meant one thing or the
    other by how PyYAML was built. Names with characters that show nothing are errors."""
    errors = check_policy_dir(
        write(
            tmp_path,
            a='company: A\nmembers:\n  groups: [staff, "\\ufeffcontractors"]\n',
            b='company: B\nmembers:\n  users: ["bob\\u200b@b.example"]\n',
        )
    )
    messages = [(Path(e.file).name, e.line, e.message) for e in errors]
    assert [(name, line) for name, line, _ in messages] == [("a.yaml", 3), ("b.yaml", 3)]
    assert "U+FEFF" in messages[0][2] and "U+200B" in messages[1][2], messages


def test_policy_check_validates_groups(tmp_path: Path) -> None:
    write(tmp_path, a="company: A\nmembers:\n  groups: [admins]\n  teams: [x]\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "policy", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode != 0
    assert "teams" in result.stdout + result.stderr


async def test_an_enforced_group_stays_enforced(tmp_path: Path) -> None:
    """The ratchet remembers an enforced company's groups: another company taking the group
    without enforcing is refused, and a member by group stays enforced."""
    enforced = write(
        tmp_path / "one", ops="company: Ops\nmembers:\n  groups: [admins]\nenforce_2fa: true\n"
    )
    store = SqliteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        assert await apply_ratchet(load_policy_dir(enforced), store, 1000.0) == []
        moved = load_policy_dir(
            write(tmp_path / "two", other="company: Other\nmembers:\n  groups: [admins]\n")
        )
        errors = await apply_ratchet(moved, store, 2000.0)
        assert any('"group admins" belongs to a company ("ops")' in e.message for e in errors)
        other = moved.company_for("alice", ["admins"])
        assert other is not None and not other.enforce_2fa
        assert await is_enforced(other, store, "alice", ["admins"])
        assert not await is_enforced(other, store, "bob", ["staff"])
    finally:
        await store.close()


def test_policy_explain_takes_the_users_groups(tmp_path: Path) -> None:
    """`gateway policy explain --group admins` places the user as a sign-in with that directory
    group would, and says it is by the group."""
    directory = write(tmp_path, ops="company: Ops\nmembers:\n  groups: [admins]\n")
    command = [sys.executable, "-m", "gateway", "policy", "explain", "--policy-dir"]
    command += [str(directory), "--app", "wiki", "--user", "alice", "--ip", "192.0.2.1"]
    command += ["--url", "https://wiki.example/"]
    alone = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert "alice is a member of no company" in alone.stdout, alone.stdout + alone.stderr
    grouped = subprocess.run(
        [*command, "--group", "staff", "--group", "Admins"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert "ops (Ops, " in grouped.stdout, grouped.stdout + grouped.stderr
    assert "a member by the group admins" in grouped.stdout
