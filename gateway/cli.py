"""The `gateway` command: argument parsing only; the work is done by the package."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


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
        help="settings file, to check application names too",
    )

    hasher = commands.add_parser("hash-password", help="make an argon2id hash for a users file")
    hasher.add_argument(
        "--stdin", action="store_true", help="read the password from standard input"
    )

    commands.add_parser("keygen", help="print a new encryption key and a new session key")
    return parser


def _policy_check(directory: Path, config: Path | None) -> int:
    from gateway.policy import check_policy_dir
    from gateway.settings import load_settings
    from gateway.yamlsource import ConfigInvalid

    known = None
    if config is not None:
        try:
            known = [application.name for application in load_settings(config).applications]
        except ConfigInvalid as exc:
            print(exc, file=sys.stderr)
            return EXIT_INVALID
    errors = check_policy_dir(directory, known_apps=known)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {directory}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{directory}: policy is valid")
    return EXIT_OK


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


def _run(config: Path, explicit_level: bool) -> int:
    from gateway.server import serve
    from gateway.settings import SettingsError, load_settings
    from gateway.yamlsource import ConfigInvalid

    try:
        settings = load_settings(config)
        if not explicit_level:
            logging.getLogger().setLevel(settings.log_level.upper())
        asyncio.run(serve(settings))
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
    if args.command == "run":
        return _run(args.config, explicit_level=args.log_level is not None)
    if args.command == "demo":
        return _demo(args.port, args.host, args.data_dir)
    if args.command == "policy":
        return _policy_check(args.directory, args.config)
    if args.command == "hash-password":
        return _hash_password(args.stdin)
    if args.command == "keygen":
        return _keygen()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
