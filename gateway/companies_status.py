"""`gateway companies status`: one aligned row per company of the policy, whether the file or the
store's ratchet enforces two-step sign-in, its trusted networks and deferral. Pure: the CLI reads
the policy and the store's enforced companies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.durations import format_duration
from gateway.policy.model import Company, Policy


def _effective(company: Company, since: float | None) -> str:
    sources = [name for name, on in (("file", company.enforce_2fa), ("store", since)) if on]
    return f"yes ({'+'.join(sources)})" if sources else "no"


def status_table(policy: Policy, enforced: Mapping[str, float]) -> list[str]:
    """One aligned row per company of the policy, then the store's enforced ids without a file."""
    header: tuple[str, ...] = ("ID", "NAME", "TYPE", "IN FILE", "IN STORE SINCE (UTC)")
    header += ("EFFECTIVE", "NETWORKS", "DEFERRAL")
    rows = [header]
    for company in sorted(policy.companies, key=lambda company: company.id):
        since = enforced.get(company.id)
        effective = _effective(company, since)
        deferral = format_duration(company.deferral) if effective == "no" else "- (enforced)"
        rows.append(
            (
                company.id,
                company.name,
                str(company.account_type),
                str(company.enforce_2fa).lower(),
                "-" if since is None else _minute(since),
                effective,
                str(len(company.trusted_networks.networks)),
                deferral,
            )
        )
    for company_id, since in sorted(enforced.items()):
        if policy.company_by_id(company_id) is None:
            rows.append((company_id, "(no policy file)", "-", "-", _minute(since), "-", "-", "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _minute(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")
