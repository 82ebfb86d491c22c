"""`remember_browser` in a company file: off unless set, never for a client company (an error
with file and line from `policy check`, not a silent pass), within its bounds."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.policy import check_policy_dir, load_policy_dir
from gateway.policy.model import AccountType, Company

REPO = Path(__file__).resolve().parents[2]

PARTNER = "company: Acme\nmembers:\n  domains: [acme.example]\nremember_browser: 30d\n"
CLIENT = (
    "company: Globex\nmembers:\n  domains: [globex.example]\naccount_type: client\n"
    "remember_browser: 30d\n"
)


def _errors(directory: Path) -> list[tuple[str, int, str]]:
    return [(Path(e.file).name, e.line, e.message) for e in check_policy_dir(directory)]


def test_remember_browser_is_off_unless_set(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("company: A\nmembers:\n  domains: [a.example]\n")
    (company,) = load_policy_dir(tmp_path).companies
    assert company.remember_browser is None


def test_a_partner_company_may_allow_it(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(PARTNER)
    (company,) = load_policy_dir(tmp_path).companies
    assert company.remember_browser == timedelta(days=30)


def test_a_client_company_setting_it_is_an_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "globex.yaml").write_text(CLIENT)
    ((name, line, message),) = _errors(tmp_path)
    assert (name, line) == ("globex.yaml", 5)
    assert "remember_browser" in message and "client" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [("30m", "from 1h to 90d"), ("91d", "from 1h to 90d"), ("soon", "a duration")],
)
def test_out_of_bounds_or_not_a_duration(tmp_path: Path, value: str, words: str) -> None:
    (tmp_path / "acme.yaml").write_text(PARTNER.replace("30d", value))
    ((name, line, message),) = _errors(tmp_path)
    assert (name, line) == ("acme.yaml", 4)
    assert words in message


def test_the_model_refuses_it_for_a_client_too() -> None:
    with pytest.raises(ValueError, match="client"):
        Company(
            "g", "G", "g.yaml", ("g.example",), (), AccountType.CLIENT, (),
            remember_browser=timedelta(days=30),
        )  # fmt: skip


def test_policy_check_command_reports_the_client_company(tmp_path: Path) -> None:
    (tmp_path / "globex.yaml").write_text(CLIENT)
    (tmp_path / "acme.yaml").write_text(PARTNER)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "policy", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "remember_browser" in line]
    assert line.startswith(f"{tmp_path / 'globex.yaml'}:5: ")
    assert "Traceback" not in result.stderr
