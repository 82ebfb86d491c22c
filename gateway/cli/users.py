"""`gateway users list`, `show`, `reset` and `sessions`: companies' members and their enrolment
status (as a table or the admin pages' CSV), one user's company, factors and sign-ins, removing a
user's second factors and sessions so they enrol again (with a reason, a confirmation and an
audit line), and where a user is signed in, ending one session or all (audited)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from gateway.policy import Policy
    from gateway.sessions import ActiveSession
    from gateway.settings import Settings


def list_command(args: argparse.Namespace) -> int:
    from gateway.admin import select, shown, to_csv
    from gateway.operator import StoreAbsent, company_members
    from gateway.store import StoreUnavailable

    name = "gateway users list"
    loaded = _open_for_users(args.config, name)
    if loaded is None:
        return EXIT_INVALID
    settings, policy = loaded
    companies = sorted(policy.companies, key=lambda c: c.id)
    if args.company is not None:
        companies = [c for c in companies if c.id == args.company]
        if not companies:
            known = ", ".join(sorted(c.id for c in policy.companies)) or "none"
            print(f"{name}: no company {args.company!r} (companies: {known})", file=sys.stderr)
            return EXIT_INVALID
    try:
        found = asyncio.run(company_members(settings.store, policy, companies))
    except StoreAbsent as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    chosen = select(found, args.query, args.status or "")
    if args.csv:
        sys.stdout.write(to_csv(chosen))
        return EXIT_OK
    company_of = {c.id: c for c in companies}
    rows = [("USER", "COMPANY", "STATUS", "METHODS", "LAST 2FA", "FROM", "FLAGS")]
    for m in chosen:
        owner = policy.company_for(m.user)
        flags = sorted(m.flags() - {m.status})
        rows.append(
            (
                m.user,
                owner.id if owner is not None and owner.id in company_of else "",
                m.status,
                ",".join(m.methods) or "-",
                shown(m.last_2fa) if m.last_2fa else "never",
                m.last_2fa_from or "-",
                ",".join(flags) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(chosen)} member{'s' if len(chosen) != 1 else ''}")
    return EXIT_OK


def show_command(user: str, config: Path) -> int:
    from gateway.admin import shown
    from gateway.operator import StoreAbsent, user_details
    from gateway.store import StoreUnavailable

    name = "gateway users show"
    loaded = _open_for_users(config, name)
    if loaded is None:
        return EXIT_INVALID
    settings, policy = loaded
    user = user.strip().lower()
    try:
        found, seen = asyncio.run(user_details(settings.store, policy, user))
    except StoreAbsent as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    company = policy.company_for(user)
    if company is None and seen.record is None and not seen.methods:
        print(f"{user}: belongs to no company and the gateway has never seen it", file=sys.stderr)
        return EXIT_INVALID
    lines = [("user", user)]
    if company is None:
        lines.append(("company", "none (asked for a second factor at every sign-in)"))
    else:
        lines.append(("company", f"{company.id} ({company.name}), {company.account_type.value}"))
    lines.append(("second factors", ", ".join(seen.methods) or "none"))
    if found is not None:
        lines += [
            ("name", found.name or "-"),
            ("status", found.status.replace("_", " ")),
            ("admin", "yes" if found.admin else "no"),
            ("listed in policy", "yes" if found.listed else "no (member by domain)"),
            ("first seen", shown(found.first_seen)),
            ("last sign-in", shown(found.last_sign_in)),
            (
                "last 2FA",
                shown(found.last_2fa)
                + (f" from {found.last_2fa_from}" if found.last_2fa_from else ""),
            ),
            ("put off until", shown(found.deferred_until) if found.deferred_until else "-"),
            (
                "locked out",
                f"until {shown(found.locked_out_until)}" if found.locked_out_until else "no",
            ),
            (
                "possibly shared",
                f"yes ({found.browsers} browsers before enrolling)"
                if found.possibly_shared
                else "no",
            ),
            ("new phone", "set by an admin, not yet confirmed" if found.phone_pending else "-"),
        ]
    elif seen.record is not None:
        lines.append(("last sign-in", shown(seen.record.facts.get("last_sign_in"))))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")
    return EXIT_OK


def reset_command(user: str, config: Path, reason: str | None, yes: bool) -> int:
    from gateway.operator import reset_user
    from gateway.store import StoreUnavailable

    name = "gateway users reset"
    reason = require_reason(name, reason)
    if reason is None:
        return EXIT_USAGE
    user = user.strip().lower()
    settings = read_settings(config)
    if settings is None:
        return EXIT_INVALID
    question = f"Remove every second factor of {user} and sign them out everywhere?"
    refused = confirm(name, yes, question, "Nothing was reset.")
    if refused is not None:
        return refused
    try:
        methods, ended = asyncio.run(reset_user(settings.store, user))
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    policy = read_policy(settings.policy_dir, settings)
    company = policy.company_for(user) if policy is not None else None
    operator_audit(
        settings,
        "reset",
        user=user,
        company=company.id if company is not None else None,
        methods=methods,
        sessions_ended=ended,
        reason=reason,
        operator=operator_name(),
        source="cli",
    )
    removed = ", ".join(methods) if methods else "none (the user had not enrolled)"
    print(f"Reset {user}: second factors removed: {removed}; sessions ended: {ended}.")
    print("At their next sign-in they set up a second factor again.")
    return EXIT_OK


def sessions_command(args: argparse.Namespace) -> int:
    """`gateway users sessions USER [--end ID | --end-all]`: the user's live sessions as the
    sessions page lists them (ID is the handle it shows), or end one or all of them. Running
    gateways refuse an ended session within their recheck bound (2 seconds)."""
    from gateway.admin import shown
    from gateway.operator import StoreAbsent
    from gateway.settings import SettingsError
    from gateway.store import StoreUnavailable

    name = "gateway users sessions"
    user = args.user.strip().lower()
    settings = read_settings(args.config)
    if settings is None:
        return EXIT_INVALID
    try:
        key = settings.secrets.read_encryption_key()
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        found, ended = asyncio.run(_sessions(settings.store, key, user, args.end, args.end_all))
    except StoreAbsent as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnavailable as exc:
        return store_failed(name, exc, settings)
    if args.end is None and not args.end_all:
        _print_sessions(user, found, shown)
        try:
            policy = read_policy(settings.policy_dir, settings)
            company = policy.company_for(user) if policy is not None else None
            remembered = asyncio.run(_remembered(settings.store, user, company))
        except StoreUnavailable as exc:
            return store_failed(name, exc, settings)
        _print_remembered(remembered, shown)
        return EXIT_OK
    policy = read_policy(settings.policy_dir, settings)
    company = policy.company_for(user) if policy is not None else None
    fields: dict[str, Any] = {
        "user": user,
        "company": company.id if company is not None else None,
        "reason": args.reason,
        "operator": operator_name(),
        "source": "cli",
    }
    if args.end_all:
        assert isinstance(ended, tuple)
        count, forgotten = ended
        operator_audit(
            settings,
            "operator_sessions_ended",
            sessions_ended=count,
            browsers_forgotten=forgotten,
            **fields,
        )
        print(
            f"Ended {count} session{'s' if count != 1 else ''} of {user}"
            f" and forgot {forgotten} remembered browser{'s' if forgotten != 1 else ''}."
        )
        return EXIT_OK
    if ended is None:
        print(f"{name}: {user} has no session {args.end!r} (it may have ended)", file=sys.stderr)
        return EXIT_INVALID
    assert not isinstance(ended, tuple)
    operator_audit(settings, "operator_session_ended", session=ended.handle, **fields)
    print(f"Ended the session {ended.handle} of {user} ({ended.browser}).")
    return EXIT_OK


async def _sessions(
    url: str, key: str, user: str, end: str | None, end_all: bool
) -> tuple[list[ActiveSession], ActiveSession | tuple[int, int] | None]:
    """The user's live sessions; or one ended (`end`); or, with `end_all`, how many sessions
    were ended and remembered browsers forgotten (as the page's "Sign out everywhere else" and
    an admin's "end all sessions" do: a browser remembered by whoever held a session does not
    outlive it)."""
    from gateway.clock import system_clock
    from gateway.crypto import Cipher
    from gateway.operator import opened_store
    from gateway.sessions import SessionManager

    async with opened_store(url) as store:
        sessions = SessionManager(store, Cipher(key), system_clock, handle_key=key)
        if end_all:
            ended = await sessions.end_others(user, None)
            return [], (ended, await store.forget_browsers(user))
        if end is not None:
            return [], await sessions.end_handle(user, end.strip().lower())
        return await sessions.active(user), None


async def _remembered(url: str, user: str, company: Any) -> list[Any]:
    """The user's remembered browsers ("Remember this browser") that still skip the second
    factor now under the company's policy (none where it is off or the policy unreadable)."""
    import time

    from gateway.operator import opened_store
    from gateway.signin.remember import live

    async with opened_store(url) as store:
        return await live(store, user, company, time.time())


def _print_remembered(found: list[Any], shown: Any) -> None:
    """Remembered browsers, after the sessions, when there are any: ID, browser, address, when
    remembered and until when (their forgetting is the sessions page's and the admins')."""
    from gateway.sessions import browser_words

    if not found:
        return
    rows = [("REMEMBERED", "BROWSER", "ADDRESS", "SINCE", "UNTIL")]
    for one in found:
        since = one.record.get("since")
        rows.append(
            (
                one.handle,
                browser_words(one.record.get("user_agent")),
                str(one.record.get("address") or "unknown"),
                shown(float(since)) if isinstance(since, int | float) else "-",
                shown(one.until),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(found)} remembered browser{'s' if len(found) != 1 else ''}")


def _print_sessions(user: str, found: list[ActiveSession], shown: Any) -> None:
    if not found:
        print(f"{user} is not signed in anywhere.")
        return
    rows = [("ID", "BROWSER", "ADDRESS", "SIGNED IN", "WITH", "LAST SEEN", "APPLICATION")]
    for one in found:
        session = one.session
        rows.append(
            (
                one.handle,
                one.browser,
                session.address or "unknown",
                shown(session.created),
                one.factor,
                shown(session.last_seen),
                session.app,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(found)} session{'s' if len(found) != 1 else ''}")


def _open_for_users(config: Path, name: str) -> tuple[Settings, Policy] | None:
    settings = read_settings(config)
    if settings is None:
        return None
    policy = read_policy(settings.policy_dir, settings)
    if policy is None:
        return None
    return settings, policy
