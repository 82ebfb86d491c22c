"""`gateway policy check`, `explain` and `diff`: validate a policy directory (with --config, the
application names and the store's enforcement ratchet too), say how the gateway treats one
request and which rule decides, and what a new policy would change for the users the store has
seen sign in (gateway.policy_diff)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    read_policy,
    read_settings,
    redact,
    store_failed,
)

if TYPE_CHECKING:
    from gateway.policy import Policy
    from gateway.policy_diff import SeenUser


def check_command(directory: Path, config: Path | None, use_store: bool) -> int:
    from gateway.config_errors import ConfigError, ConfigInvalid
    from gateway.enforcement import conflicts
    from gateway.operator import StoreAbsent, enforcement_records
    from gateway.policy import load_policy_dir
    from gateway.store import StoreUnavailable

    settings = None
    if config is not None:
        settings = read_settings(config)
        if settings is None:
            return EXIT_INVALID
    known = None if settings is None else [app.name for app in settings.applications]
    errors: list[ConfigError] = []
    try:
        policy = load_policy_dir(directory, known_apps=known)
    except ConfigInvalid as exc:
        errors, policy = exc.errors, None
    checked = ""
    if settings is not None and use_store and policy is not None:
        try:
            companies, members = asyncio.run(enforcement_records(settings.store))
        except StoreAbsent as exc:
            print(f"note: {exc}; the enforcement ratchet was not checked", file=sys.stderr)
        except StoreUnavailable as exc:
            print(
                "gateway policy check: cannot open the store to check the enforcement ratchet: "
                f"{redact(str(exc), settings.store)} (--no-store skips this check)",
                file=sys.stderr,
            )
            return EXIT_INVALID
        else:
            errors.extend(conflicts(policy, companies, members, directory))
            checked = "; no enforced company is turned off"
    for error in errors:
        print(error, file=sys.stderr)
    for application in settings.applications if settings is not None else ():
        for warning in application.intercept.warnings if application.intercept else ():
            print(f"warning: application {application.name}: {warning}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {directory}", file=sys.stderr)
        if settings is not None and use_store and policy is None:
            print("(the enforcement ratchet is checked once the files load)", file=sys.stderr)
        return EXIT_INVALID
    print(f"{directory}: policy is valid{checked}")
    return EXIT_OK


def explain_command(args: argparse.Namespace) -> int:
    import time

    from gateway.explain import Request, explain
    from gateway.operator import user_facts
    from gateway.store import StoreUnavailable

    if args.config is None and args.policy_dir is None:
        print("gateway policy explain: give --config SETTINGS or --policy-dir DIR", file=sys.stderr)
        return EXIT_USAGE
    if args.config is None and args.app is None:
        print(
            "gateway policy explain: without --config there are no hosts to route by; "
            "name the application with --app NAME",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings = None
    if args.config is not None:
        settings = read_settings(args.config)
        if settings is None:
            return EXIT_INVALID
    directory: Path = args.policy_dir or (settings.policy_dir if settings else Path())
    policy = read_policy(directory, settings)
    if policy is None:
        return EXIT_INVALID
    facts, note = None, "give -c SETTINGS to consult it"
    if settings is not None:
        user = args.user.strip().lower()
        try:
            company = policy.company_for(user, args.group)
            facts = asyncio.run(user_facts(settings.store, user, company, args.group))
        except StoreUnavailable as exc:
            note = f"the store cannot be opened: {redact(str(exc), settings.store)}"
    explanation = explain(
        policy,
        Request(args.user, args.ip, args.url, args.method, tuple(args.group)),
        applications=None if settings is None else settings.applications,
        app_name=args.app,
        facts=facts,
        store_note=note,
        now=time.time(),
    )
    print("\n".join(explanation.lines))
    return EXIT_OK if explanation.ok else EXIT_INVALID


EXIT_CHANGES = 3  # `policy diff`: the new policy answers someone otherwise


def diff_command(args: argparse.Namespace) -> int:
    """`gateway policy diff OLD NEW`: 0 when nobody the store has seen would be answered
    otherwise, 3 when someone would (the report says who, where and why), 1 when a policy
    directory, the settings or the store cannot be read."""
    import json
    import time

    from gateway.operator import StoreAbsent
    from gateway.policy_diff import diff
    from gateway.policy_diff_report import as_json, text_lines
    from gateway.store import StoreUnavailable

    settings = read_settings(args.config)
    if settings is None:
        return EXIT_INVALID
    old, new = read_policy(args.old, settings), read_policy(args.new, settings)
    if old is None or new is None:
        return EXIT_INVALID
    try:
        seen, enforced = asyncio.run(_seen_users(settings.store, [old, new]))
    except StoreAbsent as exc:
        print(f"gateway policy diff: {exc}: no users to compare", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnavailable as exc:
        return store_failed("gateway policy diff", exc, settings)
    print(
        "note: users the store records in no company cannot be listed: they are not compared",
        file=sys.stderr,
    )
    apps = [application.name for application in settings.applications]
    diffs = diff(old, new, seen, apps, enforced, time.time())
    if args.json:
        report = {"old": str(args.old), "new": str(args.new), **as_json(diffs, len(seen))}
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(text_lines(diffs, len(seen), f"policy diff {args.old} -> {args.new}")))
    return EXIT_CHANGES if diffs else EXIT_OK


async def _seen_users(url: str, policies: list[Policy]) -> tuple[list[SeenUser], set[str]]:
    """The users the store has seen sign in, in any company of either policy or any company it
    has enforced, and the store's enforced companies and members (gateway.enforcement keys)."""
    from gateway.operator import opened_store
    from gateway.policy_diff import seen_user

    async with opened_store(url) as store:
        companies = await store.enforced_companies()
        enforced = {*companies, *await store.enforced_members()}
        ids = dict.fromkeys(
            [*(company.id for policy in policies for company in policy.companies), *companies]
        )
        found: dict[str, SeenUser] = {}
        for company_id in ids:
            for record in await store.list_users(company_id):
                if record.user in found:
                    continue
                methods = await store.list_methods(record.user)
                seen = seen_user(record, methods, await store.get_deferral(record.user))
                if seen is not None:
                    found[record.user] = seen
    return list(found.values()), enforced
