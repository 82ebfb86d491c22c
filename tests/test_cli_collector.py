"""The policy commands run with Python's cyclic garbage collector paused (a policy of a thousand
files is objects that all live until the command ends) and give it back as they found it, even
when the command fails, so a process that goes on (a test run) is not left without it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway.policy
from gateway.cli import main


@pytest.fixture
def seen_during_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether the collector was enabled each time the policy was loaded."""
    seen: list[bool] = []
    load = gateway.policy.load_policy_dir

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return load(*args, **kwargs)

    monkeypatch.setattr(gateway.policy, "load_policy_dir", watched)
    enabled = gc.isenabled()
    yield seen
    gc.enable() if enabled else gc.disable()


def write_policy(directory: Path) -> Path:
    (directory / "a.yaml").write_text("company: A\nmembers:\n  domains: [a.example]\n")
    return directory


def test_policy_check_loads_with_the_collector_paused_and_restores_it(
    tmp_path: Path, seen_during_load: list[bool]
) -> None:
    gc.enable()
    assert main(["policy", "check", str(write_policy(tmp_path))]) == 0
    assert seen_during_load == [False]
    assert gc.isenabled()


def test_the_collector_is_restored_when_the_check_fails(
    tmp_path: Path, seen_during_load: list[bool]
) -> None:
    gc.enable()
    (tmp_path / "bad.yaml").write_text("company: [\n")
    assert main(["policy", "check", str(tmp_path)]) == 1
    assert seen_during_load == [False]
    assert gc.isenabled()


def test_a_collector_paused_before_stays_paused(
    tmp_path: Path, seen_during_load: list[bool]
) -> None:
    gc.disable()
    assert main(["policy", "check", str(write_policy(tmp_path))]) == 0
    assert seen_during_load == [False]
    assert not gc.isenabled()


def test_what_the_command_leaves_is_not_new_to_the_collector(
    tmp_path: Path, seen_during_load: list[bool]
) -> None:
    """Left in the younger generations, it would all be walked by the next collections."""
    # A test run before in this process may have frozen objects (gateway.heap: a policy reload
    # freezes what it built), and the command then leaves the generations alone; a command's
    # own process has nothing frozen, as here.
    gc.unfreeze()
    gc.enable()
    rules = "".join(f"    - paths: ['/r{n}/**']\n      access: deny\n" for n in range(300))
    (tmp_path / "access.yaml").write_text(f"applications:\n  wiki:\n{rules}")
    assert main(["policy", "check", str(write_policy(tmp_path))]) == 0
    young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
    assert young < 1000
