"""`gateway companies status` and `gateway companies lift-enforcement`: each company's 2FA
enforcement in its policy file and in the store, and lifting it from the store (with a reason,
a confirmation and an audit line)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    confirm,
    operator_audit,
    operator_name,
    read_policy,
    read_settings,
    require_reason,
    store_failed,
)


def status_command(config: Path) -> int:
    from gateway.companies_status import status_table
    from gateway.operator import StoreAbsent, enforced_companies
    from gateway.store import StoreUnavailable

    settings = read_settings(config)
    if settings is None:
        return EXIT_INVALID
    policy = read_policy(settings.policy_dir, settings)
    if policy is None:
        return EXIT_INVALID
    try:
        enforced = asyncio.run(enforced_companies(settings.store))
    except StoreAbsent as exc:
        print(f"note: {exc}; nothing is enforced in the store", file=sys.stderr)
        enforced = {}
    except StoreUnavailable as exc:
        return store_failed("gateway companies status", exc, settings)
    print("\n".join(status_table(policy, enforced)))
    return EXIT_OK


def lift_command(company_id: str, config: Path, reason: str | None, yes: bool) -> int:
    from gateway.durations import format_duration
    from gateway.explain import utc
    from gateway.operator import StoreAbsent, enforced_companies, lift_enforcement
    from gateway.store import StoreUnavailable

    name = "gateway companies lift-enforcement"
    reason = require_reason(name, reason)
    if reason is None:
        return EXIT_USAGE
    settings = read_settings(config)
    if settings is None:
        return EXIT_INVALID
    policy = read_policy(settings.policy_dir, settings)
    if policy is None:
        print(
            "note: the policy files could not be read; lifting from the store anyway",
            file=sys.stderr,
        )
    company = None if policy is None else policy.company_by_id(company_id)
    label = company_id if company is None else f'{company_id} ("{company.name}")'

    try:
        since = asyncio.run(enforced_companies(settings.store)).get(company_id)
    except StoreAbsent as exc:
        print(f"{name}: {exc}; nothing is enforced there", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    if since is None:
        print(f"{label} is not enforced in the store: there is nothing to lift.", file=sys.stderr)
        if company is not None and company.enforce_2fa:
            print(
                f"Its policy file {company.source}:{company.enforce_line} says enforce_2fa: true; "
                "set it to false there.",
                file=sys.stderr,
            )
        return EXIT_INVALID

    question = f"Lift 2FA enforcement for {label}, enforced since {utc(since)}?"
    refused = confirm(name, yes, question, "Nothing was lifted.")
    if refused is not None:
        return refused

    try:
        lifted = asyncio.run(lift_enforcement(settings.store, company_id))
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    if lifted is None:
        print(f"{label} is no longer enforced in the store: nothing was lifted.", file=sys.stderr)
        return EXIT_INVALID
    operator_audit(
        settings,
        "enforcement_lifted",
        company=company_id,
        reason=reason,
        operator=operator_name(),
        source="cli",
    )
    print(f"Lifted 2FA enforcement for {label} (enforced since {utc(lifted)}).")
    print(f"Reason, recorded in the audit log: {reason}")
    if company is None and policy is not None:
        print(f"{company_id} is not a company of {settings.policy_dir}.")
    elif company is None:
        print(
            "If its policy file says enforce_2fa: true, the next gateway start or policy reload "
            "enforces it again."
        )
    elif company.enforce_2fa:
        print(
            f"{company.source}:{company.enforce_line} still says enforce_2fa: true: gateways keep "
            "enforcing it, and the next gateway start or policy reload records it in the store "
            "again. Set it to false there to lift it."
        )
    else:
        print(
            f"{company.source} says enforce_2fa: false: members who have not enrolled may defer "
            f"enrolment again (for {format_duration(company.deferral)})."
        )
    return EXIT_OK
