"""Which application a request is for, by its host, and the identity mode it runs in."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.decision import Mode
from gateway.hosts import canonical_host
from gateway.settings import Application


@dataclass
class Router:
    """Application by Host header: exact host:port first, then host name, then `*`."""

    applications: tuple[Application, ...]
    _by_host: dict[str, Application] = field(default_factory=dict)
    _fallback: Application | None = None

    def __post_init__(self) -> None:
        for application in self.applications:
            for host in application.hosts:
                if host == "*":
                    self._fallback = application
                else:
                    self._by_host[canonical_host(host) or host.lower()] = application

    def route(self, host: str | None) -> Application | None:
        """`host` as gateway.hosts.canonical_host reads it; empty or None: the `*` one."""
        if host:
            found = self._by_host.get(host)
            if found is not None:
                return found
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            found = self._by_host.get(name)
            if found is not None:
                return found
        return self._fallback


_MODES = {mode.value: mode for mode in Mode}  # Mode(value) is an enum lookup; every request asks


def mode_of(application: Application) -> Mode:
    return _MODES.get(application.identity) or Mode(application.identity)
