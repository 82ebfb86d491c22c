"""The `gateway` command's arguments: one argparse parser with a sub-command per command group
(run, demo, policy, companies, users, intercept, hash-password, keygen). It imports nothing of the
package, so --help and usage errors stay quick; the commands themselves live in the sibling
modules."""

from __future__ import annotations

import argparse
from pathlib import Path

# gateway.admin.FILTERS, without importing the package for --help
ADMIN_FILTERS = (
    "enrolled",
    "deferred",
    "not_enrolled",
    "locked_out",
    "possibly_shared",
    "phone_pending",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="A 2FA enforcement gateway for legacy web applications."
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="default: the settings file's log_level, else info",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway with a settings file")
    run.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    run.add_argument(
        "--workers",
        "-w",
        type=_workers,
        default=1,
        help="worker processes sharing the address (default 1; they share state in the store)",
    )
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of them

    demo = commands.add_parser("demo", help="run a sample application behind the gateway")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--data-dir", type=Path, default=None, help="keep the demo's data here")

    policy = commands.add_parser("policy", help="company policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = policy_commands.add_parser("check", help="validate a policy directory")
    check.add_argument("directory", type=Path)
    check.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="settings file, to check application names and the store's enforcement ratchet too",
    )
    check.add_argument(
        "--no-store",
        action="store_true",
        help="with --config, do not open the store (application names only)",
    )
    explain = policy_commands.add_parser(
        "explain", help="how the gateway treats one request, and which rule decides"
    )
    explain.add_argument("--user", required=True, help="the user name or address")
    explain.add_argument("--ip", required=True, help="the client address")
    explain.add_argument(
        "--group",
        action="append",
        default=[],
        help="a directory group of the user (portal mode's LDAP groups); again for more",
    )
    explain.add_argument(
        "--url", required=True, help="the URL asked for, such as https://host/path"
    )
    explain.add_argument("--method", default="GET", help="the HTTP method (default GET)")
    explain.add_argument(
        "--config", "-c", type=Path, default=None, help="settings file: applications and store"
    )
    explain.add_argument(
        "--policy-dir", type=Path, default=None, help="policy directory (default: the settings')"
    )
    explain.add_argument(
        "--app", default=None, help="the application (needed without --config; else by host)"
    )

    diff_help = (
        "what a new policy would change for the users the store has seen sign in: who is "
        "newly asked for a second factor, denied, let skip it or let through, on which paths "
        "(exit 0: no change, 3: changes, 1: a broken policy directory or store)"
    )
    policy_diff = policy_commands.add_parser("diff", help=diff_help, description=diff_help)
    policy_diff.add_argument("old", metavar="OLD_DIR", type=Path, help="the policy in force")
    policy_diff.add_argument("new", metavar="NEW_DIR", type=Path, help="the policy proposed")
    policy_diff.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file: store"
    )
    policy_diff.add_argument("--json", action="store_true", help="the report as JSON")

    companies = commands.add_parser("companies", help="companies and their 2FA enforcement")
    company_commands = companies.add_subparsers(
        dest="companies_command", required=True, metavar="ACTION"
    )
    status = company_commands.add_parser(
        "status", help="each company's enforcement, in the file and in the store"
    )
    status.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    lift = company_commands.add_parser(
        "lift-enforcement", help="lift a company's 2FA enforcement from the store (audited)"
    )
    lift.add_argument("company", metavar="COMPANY_ID", help="the company id (its file name)")
    lift.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    lift.add_argument("--reason", default=None, help="why; recorded in the audit log (required)")
    lift.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    users = commands.add_parser("users", help="users' second factors")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    listing = user_commands.add_parser(
        "list", help="companies' members and their enrolment status, from the policy and store"
    )
    listing.add_argument("--company", default=None, help="only this company (its id)")
    listing.add_argument(
        "--status",
        default=None,
        choices=ADMIN_FILTERS,
        help="only members with this status or flag",
    )
    listing.add_argument(
        "--query", "-q", default="", help="only addresses or names containing this"
    )
    listing.add_argument("--csv", action="store_true", help="CSV, as the admin pages export it")
    listing.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    show = user_commands.add_parser("show", help="one user's company, factors and sign-ins")
    show.add_argument("user", metavar="USER", help="the user name or address")
    show.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    reset = user_commands.add_parser(
        "reset",
        help="remove a user's second factors and end their sessions, so they enrol again (audited)",
    )
    reset.add_argument("user", metavar="USER", help="the user name or address")
    reset.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )
    reset.add_argument("--reason", default=None, help="why; recorded in the audit log (required)")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sessions = user_commands.add_parser(
        "sessions",
        help="where a user is signed in; end one session (--end ID) or all (--end-all), audited",
    )
    sessions.add_argument("user", metavar="USER", help="the user name or address")
    ending = sessions.add_mutually_exclusive_group()
    ending.add_argument("--end", metavar="ID", default=None, help="end this session (its ID)")
    ending.add_argument("--end-all", action="store_true", help="end every session of the user")
    sessions.add_argument("--reason", default=None, help="why; recorded in the audit log")
    sessions.add_argument(
        "--config", "-c", type=Path, default=Path("gateway.yaml"), help="settings file"
    )

    intercept = commands.add_parser("intercept", help="applications that keep their login form")
    intercept_commands = intercept.add_subparsers(
        dest="intercept_command", required=True, metavar="ACTION"
    )
    probe = intercept_commands.add_parser(
        "probe",
        help="sign in to an application with a test account (a wrong password, then the right "
        "one) and show its login form, answers and cookies, checks of its intercept settings "
        "and a suggested intercept: block",
    )
    probe.add_argument(
        "--config", "-c", type=Path, default=None, help="settings file (with --app): check them"
    )
    probe.add_argument("--app", default=None, help="the application, with --config")
    probe.add_argument(
        "--upstream",
        default=None,
        help="without --config: the application's URL, such as http://127.0.0.1:9000",
    )
    probe.add_argument(
        "--login-page",
        default=None,
        help="the path of the page with the login form (default: the settings' login path, "
        "else /login)",
    )
    probe.add_argument("--user", required=True, help="the test account's user name")
    probe.add_argument(
        "--password-env",
        default=None,
        metavar="VAR",
        help="the environment variable holding its password (default: asked on the terminal)",
    )

    hasher = commands.add_parser("hash-password", help="make an argon2id hash for a users file")
    hasher.add_argument(
        "--stdin", action="store_true", help="read the password from standard input"
    )

    commands.add_parser("keygen", help="print a new encryption key and a new session key")
    return parser


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return count
