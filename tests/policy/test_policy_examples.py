"""The example policies and settings in the repository load cleanly and mean what they say."""

import ipaddress
from pathlib import Path

from gateway.policy import Access, AccountType, check_policy_dir, load_policy_dir
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_example_policies_load_with_the_example_settings() -> None:
    """policies/ checks clean against the application names of gateway.example.yaml."""
    settings = load_settings(ROOT / "gateway.example.yaml")
    assert settings.policy_dir == ROOT / "policies"
    known = [app.name for app in settings.applications]
    assert check_policy_dir(settings.policy_dir, known) == []
    policy = load_policy_dir(settings.policy_dir, known)

    acme = policy.company_for("alice@acme.example")
    assert acme is not None
    assert acme.id == "acme"
    assert acme.enforce_2fa is True
    assert acme.account_type is AccountType.PARTNER
    assert acme.admins == ("alice@acme.example",)
    assert acme.trusted_networks.networks == (ipaddress.ip_network("10.0.0.0/8"),)

    globex = policy.company_for("someone@globex.example")
    assert globex is not None
    assert globex.enforce_2fa is False

    assert policy.access_for("legacy", "GET", "/static/app.css")[0] is Access.BYPASS
    assert policy.access_for("legacy", "GET", "/favicon.ico")[0] is Access.BYPASS
    assert policy.access_for("legacy", "POST", "/internal/jobs")[0] is Access.DENY
    assert policy.access_for("legacy", "GET", "/reports") == (Access.TWO_FACTOR, None)
