"""The `gateway` command: argument parsing only; the work is done by the package."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from gateway.policy import Policy
    from gateway.settings import Settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
# gateway.admin.FILTERS, without importing the package for --help
ADMIN_FILTERS = (
    "enrolled",
    "deferred",
    "not_enrolled",
    "locked_out",
    "possibly_shared",
    "phone_pending",
)


def _parser() -> argparse.ArgumentParser:
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


def _store_failed(name: str, exc: Exception, settings: Settings) -> int:
    """Say that the store could not be used (never its password), and the exit status."""
    print(f"{name}: cannot open the store: {_redact(str(exc), settings.store)}", file=sys.stderr)
    return EXIT_INVALID


def _redact(text: str, url: str) -> str:
    """`text` without the user name or password a store URL may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return text
    safe = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    return text.replace(url, safe).replace(repr(url), repr(safe))


def _load_settings(config: Path) -> Settings | None:
    from gateway.settings import load_settings
    from gateway.yamlsource import ConfigInvalid

    try:
        return load_settings(config)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def _load_policy(directory: Path, settings: Settings | None) -> Policy | None:
    """The policy, or None after printing every error."""
    from gateway.policy import load_policy_dir
    from gateway.yamlsource import ConfigInvalid

    known = None if settings is None else [app.name for app in settings.applications]
    try:
        return load_policy_dir(directory, known_apps=known)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.errors)} error(s) in {directory}", file=sys.stderr)
        return None


def _policy_check(directory: Path, config: Path | None, use_store: bool) -> int:
    from gateway.enforcement import conflicts
    from gateway.operator import StoreAbsent, enforcement_records
    from gateway.policy import load_policy_dir
    from gateway.store import StoreUnavailable
    from gateway.yamlsource import ConfigError, ConfigInvalid

    settings = None
    if config is not None:
        settings = _load_settings(config)
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
                f"{_redact(str(exc), settings.store)} (--no-store skips this check)",
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


def _policy_explain(args: argparse.Namespace) -> int:
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
        settings = _load_settings(args.config)
        if settings is None:
            return EXIT_INVALID
    directory: Path = args.policy_dir or (settings.policy_dir if settings else Path())
    policy = _load_policy(directory, settings)
    if policy is None:
        return EXIT_INVALID
    facts, note = None, "give -c SETTINGS to consult it"
    if settings is not None:
        user = args.user.strip().lower()
        try:
            facts = asyncio.run(user_facts(settings.store, user, policy.company_for(user)))
        except StoreUnavailable as exc:
            note = f"the store cannot be opened: {_redact(str(exc), settings.store)}"
    explanation = explain(
        policy,
        Request(user=args.user, ip=args.ip, url=args.url, method=args.method),
        applications=None if settings is None else settings.applications,
        app_name=args.app,
        facts=facts,
        store_note=note,
        now=time.time(),
    )
    print("\n".join(explanation.lines))
    return EXIT_OK if explanation.ok else EXIT_INVALID


def _companies_status(config: Path) -> int:
    from gateway.explain import status_table
    from gateway.operator import StoreAbsent, enforced_companies
    from gateway.store import StoreUnavailable

    settings = _load_settings(config)
    if settings is None:
        return EXIT_INVALID
    policy = _load_policy(settings.policy_dir, settings)
    if policy is None:
        return EXIT_INVALID
    try:
        enforced = asyncio.run(enforced_companies(settings.store))
    except StoreAbsent as exc:
        print(f"note: {exc}; nothing is enforced in the store", file=sys.stderr)
        enforced = {}
    except StoreUnavailable as exc:
        return _store_failed("gateway companies status", exc, settings)
    print("\n".join(status_table(policy, enforced)))
    return EXIT_OK


def _operator_audit(settings: Settings, event: str, **fields: Any) -> None:
    """An operator command's audit line, where the settings send the gateway's (`audit:`): a
    file, or standard error rather than standard output, which is the command's own."""
    from gateway.audit import AuditFileError, AuditLog, audit

    sink = None
    if settings.audit.to == "file":
        try:
            sink = AuditLog("file", settings.audit.path)
        except AuditFileError as exc:
            print(f"note: {exc}; the audit line goes to standard error", file=sys.stderr)
    if sink is None:
        _audit_to_stderr()
        audit(event, **fields)
        return
    sink.attach()
    try:
        audit(event, **fields)
    finally:
        sink.detach()


def _audit_to_stderr() -> None:
    """Audit events as bare JSON lines on standard error, whatever --log-level says (a later
    setting chooses stdout or a file)."""
    audit_log = logging.getLogger("gateway.audit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    audit_log.propagate = False


def _operator_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry
        return f"uid {os.getuid()}"


def _reason(name: str, reason: str | None) -> str | None:
    """An operator action's reason on one line, or None (after saying so) when there is none."""
    if reason is None or not reason.strip():
        print(
            f"{name}: a reason is required: --reason TEXT (it is recorded in the audit log)",
            file=sys.stderr,
        )
        return None
    return " ".join(reason.split())


def _confirm(name: str, yes: bool, question: str, declined: str) -> int | None:
    """None when the operator confirmed (or said --yes); else the exit status."""
    if yes:
        return None
    if not sys.stdin.isatty():
        print(f"{name}: not on a terminal: add --yes to confirm", file=sys.stderr)
        return EXIT_USAGE
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        print(declined)
        return EXIT_INVALID
    return None


def _lift_enforcement(company_id: str, config: Path, reason: str | None, yes: bool) -> int:
    from gateway.durations import format_duration
    from gateway.explain import utc
    from gateway.operator import StoreAbsent, enforced_companies, lift_enforcement
    from gateway.store import StoreUnavailable

    name = "gateway companies lift-enforcement"
    reason = _reason(name, reason)
    if reason is None:
        return EXIT_USAGE
    settings = _load_settings(config)
    if settings is None:
        return EXIT_INVALID
    policy = _load_policy(settings.policy_dir, settings)
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
        return _store_failed(name, exc, settings)
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
    refused = _confirm(name, yes, question, "Nothing was lifted.")
    if refused is not None:
        return refused

    try:
        lifted = asyncio.run(lift_enforcement(settings.store, company_id))
    except StoreUnavailable as exc:
        return _store_failed(name, exc, settings)
    if lifted is None:
        print(f"{label} is no longer enforced in the store: nothing was lifted.", file=sys.stderr)
        return EXIT_INVALID
    _operator_audit(
        settings,
        "enforcement_lifted",
        company=company_id,
        reason=reason,
        operator=_operator_name(),
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


def _reset_user(user: str, config: Path, reason: str | None, yes: bool) -> int:
    from gateway.operator import reset_user
    from gateway.store import StoreUnavailable

    name = "gateway users reset"
    reason = _reason(name, reason)
    if reason is None:
        return EXIT_USAGE
    user = user.strip().lower()
    settings = _load_settings(config)
    if settings is None:
        return EXIT_INVALID
    question = f"Remove every second factor of {user} and sign them out everywhere?"
    refused = _confirm(name, yes, question, "Nothing was reset.")
    if refused is not None:
        return refused
    try:
        methods, ended = asyncio.run(reset_user(settings.store, user))
    except StoreUnavailable as exc:
        return _store_failed(name, exc, settings)
    policy = _load_policy(settings.policy_dir, settings)
    company = policy.company_for(user) if policy is not None else None
    _operator_audit(
        settings,
        "reset",
        user=user,
        company=company.id if company is not None else None,
        methods=methods,
        sessions_ended=ended,
        reason=reason,
        operator=_operator_name(),
        source="cli",
    )
    removed = ", ".join(methods) if methods else "none (the user had not enrolled)"
    print(f"Reset {user}: second factors removed: {removed}; sessions ended: {ended}.")
    print("At their next sign-in they set up a second factor again.")
    return EXIT_OK


def _open_for_users(config: Path, name: str) -> tuple[Settings, Policy] | None:
    settings = _load_settings(config)
    if settings is None:
        return None
    policy = _load_policy(settings.policy_dir, settings)
    if policy is None:
        return None
    return settings, policy


def _users_list(args: argparse.Namespace) -> int:
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
        return _store_failed(name, exc, settings)
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


def _users_show(user: str, config: Path) -> int:
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
        return _store_failed(name, exc, settings)
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


def _intercept_probe(args: argparse.Namespace) -> int:
    from gateway.probe_cli import probe_command

    return probe_command(args)


def _hash_password(from_stdin: bool) -> int:
    from gateway.identity.portal import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ.", file=sys.stderr)
            return EXIT_INVALID
    if not password:
        print("An empty password cannot be hashed.", file=sys.stderr)
        return EXIT_INVALID
    print(hash_password(password))
    return EXIT_OK


def _keygen() -> int:
    import secrets

    from gateway.crypto import generate_key

    print(f"encryption key: {generate_key()}")
    print(f"session key:    {secrets.token_urlsafe(48)}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from gateway import heap
    from gateway.server import serve
    from gateway.settings import SettingsError, load_settings
    from gateway.workers import Supervisor, check_address_free, worker_command
    from gateway.yamlsource import ConfigInvalid

    config: Path = args.config
    try:
        settings = load_settings(config)
        if args.log_level is None:
            logging.getLogger().setLevel(settings.log_level.upper())
        if args.workers > 1:
            # every mistake is reported once, here, rather than by each worker in turn
            if _load_policy(settings.policy_dir, settings) is None:
                return EXIT_INVALID
            check_address_free(settings.listen.host, settings.listen.port)
            command = worker_command(config.resolve(), args.log_level)
            return Supervisor(command, args.workers).run()
        asyncio.run(serve(settings, ready=lambda _url: heap.settle(), reuse_port=args.worker))
    except (ConfigInvalid, SettingsError, ValueError, OSError) as exc:
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _demo(port: int, host: str, data_dir: Path | None) -> int:
    from gateway.demo.run import run_demo

    try:
        asyncio.run(run_demo(port, host, data_dir))
    except OSError as exc:
        print(f"gateway demo: cannot start: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("run", "demo"):
        _audit_to_stderr()
    if args.command == "run":
        return _run(args)
    if args.command == "demo":
        return _demo(args.port, args.host, args.data_dir)
    if args.command == "policy" and args.policy_command == "check":
        return _policy_check(args.directory, args.config, use_store=not args.no_store)
    if args.command == "policy" and args.policy_command == "explain":
        return _policy_explain(args)
    if args.command == "companies" and args.companies_command == "status":
        return _companies_status(args.config)
    if args.command == "companies" and args.companies_command == "lift-enforcement":
        return _lift_enforcement(args.company, args.config, args.reason, args.yes)
    if args.command == "users" and args.users_command == "list":
        return _users_list(args)
    if args.command == "users" and args.users_command == "show":
        return _users_show(args.user, args.config)
    if args.command == "users" and args.users_command == "reset":
        return _reset_user(args.user, args.config, args.reason, args.yes)
    if args.command == "intercept" and args.intercept_command == "probe":
        return _intercept_probe(args)
    if args.command == "hash-password":
        return _hash_password(args.stdin)
    if args.command == "keygen":
        return _keygen()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
