"""`policy explain` shows a company's remember_browser and the remembered browser's case."""

from __future__ import annotations

from pathlib import Path

from gateway.explain import Request, StoreFacts, explain
from gateway.policy import load_policy_dir

PARTNER = "company: Acme\nmembers:\n  domains: [acme.example]\nremember_browser: 30d\n"


def test_policy_explain_shows_remember_browser(tmp_path: Path) -> None:
    """The company line for it, and the remembered browser's case among the decisions: it skips
    the challenge; a company without the key shows neither."""
    (tmp_path / "acme.yaml").write_text(PARTNER)
    (tmp_path / "other.yaml").write_text("company: O\nmembers:\n  domains: [o.example]\n")
    policy = load_policy_dir(tmp_path)
    request = Request(user="alice@acme.example", ip="203.0.113.9", url="https://x.example/")
    lines = explain(policy, request, app_name="app", facts=StoreFacts(methods=("totp",))).lines
    text = "\n".join(lines)
    assert "remembering: remember_browser 30d: after a real second factor" in text
    assert "  a remembered browser: skip_remembered: a browser remembered for this user" in text
    other = Request(user="olga@o.example", ip="203.0.113.9", url="https://x.example/")
    lines = explain(policy, other, app_name="app", facts=StoreFacts(methods=("totp",))).lines
    assert not any("remembering:" in line or "remembered browser" in line for line in lines)
