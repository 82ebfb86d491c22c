"""What every `gateway` command shares: the exit statuses, reading the settings and the policy
(None after printing every error), pausing the cyclic garbage collector for a one-shot command,
saying the store failed without its password, and, for the
audited operator commands (lifting enforcement, resetting a user), the required reason, the
confirmation on a terminal and the audit line with the operator's name."""

from __future__ import annotations

import atexit
import gc
import getpass
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from gateway.policy import Policy
    from gateway.settings import Settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a one-shot command runs (restored after):
    a policy of a thousand files is hundreds of thousands of objects that all live until the
    command ends, and the collector walked them again and again, a fifth of the time of
    `policy check`. Reference counting still frees whatever is dropped. What the command leaves
    joins the oldest generation before the collector is enabled again (else its first young
    collection walks it all, 0.1 s), and is frozen (gc.freeze) when the process exits, before
    the collection Python makes then, which would walk it all once more for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # nothing frozen by another (gateway.heap.settle)
            gc.freeze()
            gc.unfreeze()  # the permanent generation goes back as the oldest one
        if enabled:
            gc.enable()
        atexit.unregister(gc.freeze)  # once, however often a test process runs a command
        atexit.register(gc.freeze)


def store_failed(name: str, exc: Exception, settings: Settings) -> int:
    """Say that the store could not be used (never its password), and the exit status."""
    print(f"{name}: cannot open the store: {redact(str(exc), settings.store)}", file=sys.stderr)
    return EXIT_INVALID


def redact(text: str, url: str) -> str:
    """`text` without the user name or password a store URL may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return text
    safe = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    return text.replace(url, safe).replace(repr(url), repr(safe))


def read_settings(config: Path) -> Settings | None:
    """The settings, or None after printing every error."""
    from gateway.config_errors import ConfigInvalid
    from gateway.settings import load_settings

    try:
        return load_settings(config)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def read_policy(directory: Path, settings: Settings | None) -> Policy | None:
    """The policy, or None after printing every error."""
    from gateway.config_errors import ConfigInvalid
    from gateway.policy import load_policy_dir

    known = None if settings is None else [app.name for app in settings.applications]
    try:
        return load_policy_dir(directory, known_apps=known)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.errors)} error(s) in {directory}", file=sys.stderr)
        return None


def operator_audit(settings: Settings, event: str, **fields: Any) -> None:
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
        audit_to_stderr()
        audit(event, **fields)
        return
    sink.attach()
    try:
        audit(event, **fields)
    finally:
        sink.detach()


def audit_to_stderr() -> None:
    """Audit events as bare JSON lines on standard error, whatever --log-level says (a later
    setting chooses stdout or a file)."""
    audit_log = logging.getLogger("gateway.audit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    audit_log.propagate = False


def operator_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry
        return f"uid {os.getuid()}"


def require_reason(name: str, reason: str | None) -> str | None:
    """An operator action's reason on one line, or None (after saying so) when there is none."""
    if reason is None or not reason.strip():
        print(
            f"{name}: a reason is required: --reason TEXT (it is recorded in the audit log)",
            file=sys.stderr,
        )
        return None
    return " ".join(reason.split())


def confirm(name: str, yes: bool, question: str, declined: str) -> int | None:
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
