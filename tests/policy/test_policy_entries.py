"""Entries of the policy directory that are not regular files inside it (issue 15, item 4) are
reported as errors with their path, never skipped in silence, and a FIFO is never opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.policy import load_policy_dir
from gateway.policy.loader import check_policy_dir
from gateway.yamlsource import ConfigInvalid

COMPANY = "company: Acme\nmembers: {domains: [acme.example]}\n"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "acme.yaml").write_text(COMPANY)
    return directory


def messages(directory: Path) -> list[str]:
    return [f"{error.file}: {error.message}" for error in check_policy_dir(directory)]


def test_a_fifo_is_an_error_and_is_never_opened(policy_dir: Path) -> None:
    os.mkfifo(policy_dir / "globex.yaml")  # opening it for reading would block for ever
    [message] = messages(policy_dir)
    assert message.endswith("globex.yaml: is a FIFO, not a policy file: remove it or rename it")


def test_a_directory_with_a_policy_name_is_an_error(policy_dir: Path) -> None:
    (policy_dir / "initech.yml").mkdir()
    [message] = messages(policy_dir)
    assert "initech.yml: is a directory" in message


def test_a_symbolic_link_out_of_the_directory_is_an_error(policy_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("company: Other\nmembers: {domains: [other.example]}\n")
    (policy_dir / "other.yaml").symlink_to(outside)
    (policy_dir / "broken.yaml").symlink_to(tmp_path / "missing.yaml")
    found = messages(policy_dir)
    assert any(
        "other.yaml: is a symbolic link leading out of the policy directory" in m for m in found
    )
    assert any("broken.yaml: cannot be read" in m for m in found)
    with pytest.raises(ConfigInvalid):
        load_policy_dir(policy_dir)


def test_a_link_inside_the_directory_is_read(policy_dir: Path) -> None:
    (policy_dir / "current.yaml").symlink_to(policy_dir / "acme.yaml")
    assert not [m for m in messages(policy_dir) if "current.yaml: is" in m]
