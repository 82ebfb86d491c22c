"""`gateway intercept probe`: which application (the settings' or an --upstream URL), the password
(a named environment variable or the terminal, never an argument), then gateway.probe runs and
prints the report; the exit status says whether every check passed."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from urllib.parse import urlsplit

from gateway.cli.common import read_settings
from gateway.probe import EXIT_FAILED, EXIT_OK, EXIT_USAGE, NAME, checks, render, run_probe
from gateway.probe_report import Target, hider


def probe_command(args: argparse.Namespace) -> int:
    """The command: read the settings or --upstream, the password, run, print; the exit status."""
    target = _target(args)
    if isinstance(target, int):
        return target
    password = _password(args.password_env)
    if password is None:
        return EXIT_USAGE
    report = asyncio.run(run_probe(target, args.user, password))
    print("\n".join(render(report, hider(password))))
    if report.error is not None or report.right is None:
        return EXIT_FAILED
    return EXIT_OK if all(passed for passed, _ in checks(report)) else EXIT_FAILED


def _target(args: argparse.Namespace) -> Target | int:
    page = args.login_page
    if page is not None and (not page.startswith("/") or page.startswith("//")):
        return _usage(f'--login-page must be a path starting with "/", not {page!r}')
    if args.config is None:
        if args.app is not None:
            return _usage("--app needs the settings file: -c SETTINGS")
        if args.upstream is None:
            return _usage("give -c SETTINGS --app NAME, or --upstream URL")
        parts = urlsplit(args.upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            example = "http://127.0.0.1:9000"
            return _usage(
                f"--upstream must be an http(s) URL such as {example}, not {args.upstream!r}"
            )
        return Target(args.upstream.rstrip("/"), page or "/login")
    if args.upstream is not None:
        return _usage("give either -c SETTINGS --app NAME or --upstream URL, not both")
    settings = read_settings(args.config)
    if settings is None:
        return EXIT_FAILED
    apps = {app.name: app for app in settings.applications}
    intercepted = ", ".join(n for n, a in apps.items() if a.intercept is not None) or "none"
    app = apps.get(args.app) if args.app is not None else None
    if app is None or app.intercept is None:
        what = f"no intercept application {args.app!r}" if args.app else "--app NAME is required"
        return _usage(f"{what} (intercept applications in {args.config}: {intercepted})")
    login = app.intercept.login
    default = login.path
    return Target(
        app.upstream,
        page or default,
        config=app.intercept,
        app=app.name,
        connect_timeout=min(app.timeouts.connect, 30.0),
    )


def _password(env: str | None) -> str | None:
    if env is not None:
        password = os.environ.get(env)
        if password is None:
            _usage(f"the environment variable {env} (--password-env) is not set")
        elif not password:
            _usage(f"the environment variable {env} (--password-env) is empty")
        return password or None
    if not sys.stdin.isatty():
        _usage("not on a terminal: give the test account's password with --password-env VAR")
        return None
    password = getpass.getpass("The test account's password: ")
    if not password:
        _usage("an empty password cannot be tried")
    return password or None


def _usage(message: str) -> int:
    print(f"{NAME}: {message}", file=sys.stderr)
    return EXIT_USAGE
