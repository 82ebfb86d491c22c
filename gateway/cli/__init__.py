"""The `gateway` command: argument parsing only; the work is done by the package. `main` parses
the arguments (parser.py) and hands each command to the module of its group: run.py (run, demo),
policy.py (policy check, explain, diff), companies.py (status, lift-enforcement), users.py (list,
show, reset), probe.py (intercept probe) and credentials.py (hash-password, keygen); common.py
holds what they share. The console script `gateway` and `python -m gateway` call `main`."""

from __future__ import annotations

import argparse
import logging

from gateway.cli import companies, credentials, policy, run, users
from gateway.cli.common import EXIT_USAGE, audit_to_stderr, collector_paused
from gateway.cli.parser import build_parser

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("run", "demo"):
        audit_to_stderr()
    if args.command == "run":
        return run.run_command(args)
    if args.command == "demo":
        return run.demo_command(args.port, args.host, args.data_dir)
    if args.command == "policy":
        with collector_paused():
            return _policy(args)
    if args.command == "companies" and args.companies_command == "status":
        return companies.status_command(args.config)
    if args.command == "companies" and args.companies_command == "lift-enforcement":
        return companies.lift_command(args.company, args.config, args.reason, args.yes)
    if args.command == "users" and args.users_command == "list":
        return users.list_command(args)
    if args.command == "users" and args.users_command == "show":
        return users.show_command(args.user, args.config)
    if args.command == "users" and args.users_command == "reset":
        return users.reset_command(args.user, args.config, args.reason, args.yes)
    if args.command == "users" and args.users_command == "sessions":
        return users.sessions_command(args)
    if args.command == "intercept" and args.intercept_command == "probe":
        from gateway.cli.probe import probe_command  # gateway.probe only when probing

        return probe_command(args)
    if args.command == "hash-password":
        return credentials.hash_password_command(args.stdin)
    if args.command == "keygen":
        return credentials.keygen_command()
    return EXIT_USAGE


def _policy(args: argparse.Namespace) -> int:
    if args.policy_command == "check":
        return policy.check_command(args.directory, args.config, use_store=not args.no_store)
    if args.policy_command == "explain":
        return policy.explain_command(args)
    if args.policy_command == "diff":
        return policy.diff_command(args)
    return EXIT_USAGE
