"""Security events as one JSON line each, on the `gateway.audit` logger, and where they go.

A line is `{"time": "2025-05-01T12:00:00.123Z", "event": ..., "user": ..., "company": ...,
"ip": ..., "request_id": ..., "application": ..., <the event's own fields>}`: time in ISO 8601,
UTC, milliseconds; fields that do not apply are left out. Inside a request, `user`, `company`,
`ip`, `request_id` and `application` come from the request itself (the middleware binds it with
`bind_request`) when a call site does not pass them. The event names are stable:
docs/audit-log.md lists them.

Where the lines go is the settings' `audit:` (standard output, or a file they are appended to);
`AuditLog` is that destination, attached to the logger while the gateway runs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from gateway.context import RequestContext

# what the request being handled knows (None before the middleware has read it)
Lookup = Callable[[], "RequestContext | None"]

log = logging.getLogger("gateway.audit")

# first in every line, in this order, when they apply
_COMMON = ("time", "event", "user", "company", "ip", "request_id", "application")
_request: ContextVar[Lookup | None] = ContextVar("gateway_audit_request", default=None)


def bind_request(lookup: Lookup) -> Token[Lookup | None]:
    """Audit lines written while a request is handled carry its user, company, ip and id, as
    `lookup()` finds them then (the middleware passes the request's context)."""
    return _request.set(lookup)


def unbind_request(token: Token[Lookup | None]) -> None:
    _request.reset(token)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_request(fields: dict[str, Any]) -> dict[str, Any]:
    """user, company, ip and request_id of the request being handled, where known."""
    lookup = _request.get()
    ctx = lookup() if lookup is not None else None
    if ctx is None:
        return {}
    user = fields.get("user")
    if user is None:
        user = ctx.session.user if ctx.session is not None else None
        user = user or ctx.header_user
    company = fields.get("company")
    if company is None and user:
        found = ctx.policy.company_for(str(user))
        company = found.id if found is not None else None
    return {
        "user": user,
        "company": company,
        "ip": str(ctx.client_ip) if ctx.client_ip is not None else None,
        "request_id": ctx.request_id,
        "application": ctx.application.name,
    }


def audit(event: str, **fields: Any) -> None:
    record: dict[str, Any] = dict.fromkeys(_COMMON)
    record.update(time=_now(), event=event)
    record.update(_from_request(fields))
    record.update((key, value) for key, value in fields.items() if value is not None)
    line = {key: value for key, value in record.items() if value is not None}
    log.info(json.dumps(line, default=str, separators=(",", ":")))


class AuditFileError(Exception):
    """The audit file cannot be opened for appending."""


class _Stdout(logging.Handler):
    """Each line on standard output (the one in force when it is written), flushed at once."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


class _AppendFile(logging.Handler):
    """Each line appended with one write() to a file opened O_APPEND, so several workers can
    share the file without mixing lines; reopened when log rotation renames or removes it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fd = -1
        self._identity = (0, 0)
        self._open()

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise AuditFileError(
                f"cannot open the audit file {self.path} for appending: {exc.strerror or exc}"
            ) from None
        stat = os.fstat(fd)
        self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)

    def _reopen_if_moved(self) -> None:
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) == self._identity:
                return
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = -1
        self._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (record.getMessage() + "\n").encode("utf-8")
            self._reopen_if_moved()
            os.write(self._fd, data)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()


def _stand_in(handler: logging.Handler) -> bool:
    return type(handler) is logging.StreamHandler and handler.stream is sys.stderr


class AuditLog:
    """The destination of the audit lines: `to` "stdout", or "file" with `path`. The file is
    opened (for appending) at construction, so a path that cannot be written stops the start
    with AuditFileError. `attach()` sends the lines here until `detach()`."""

    # the process has one audit logger: what is attached to it, and what was there before
    _attached: ClassVar[list[AuditLog]] = []
    _displaced: ClassVar[list[logging.Handler]] = []
    _level: ClassVar[int] = logging.NOTSET

    def __init__(self, to: str = "stdout", path: Path | None = None) -> None:
        if to == "file":
            if path is None:
                raise AuditFileError("the audit log goes to a file but no path is given")
            self.handler: logging.Handler = _AppendFile(path)
        else:
            self.handler = _Stdout()
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def attach(self) -> None:
        """Lines go here (and to every other attached AuditLog: gateways in one process), no
        longer to the command line's stand-in on standard error (a plain StreamHandler that
        `gateway run` sets up before the settings are read); other handlers stay."""
        if not AuditLog._attached:
            AuditLog._displaced = [handler for handler in log.handlers if _stand_in(handler)]
            for handler in AuditLog._displaced:
                log.removeHandler(handler)
            AuditLog._level = log.level
            log.setLevel(logging.INFO)  # whatever the log level: these are not diagnostics
        AuditLog._attached.append(self)
        log.addHandler(self.handler)

    def detach(self) -> None:
        if self in AuditLog._attached:
            AuditLog._attached.remove(self)
            log.removeHandler(self.handler)
            if not AuditLog._attached:
                for handler in AuditLog._displaced:
                    log.addHandler(handler)
                AuditLog._displaced = []
                log.setLevel(AuditLog._level)
        self.handler.close()
