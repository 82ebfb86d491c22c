"""What the gateway knows about one request before it decides anything about it."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from functools import cached_property

from multidict import CIMultiDict

from gateway.clientip import IPAddress
from gateway.cookies import parse_cookie_header
from gateway.decision import Mode
from gateway.memo import remembered
from gateway.paths import encode_path
from gateway.policy.model import Company, Policy
from gateway.sessions import Session
from gateway.settings import Application

# Request ids: this process's random prefix and a counter (unique per process, and across
# workers and restarts by the prefix; cheaper than random bytes per request).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


@dataclass
class RequestContext:
    application: Application
    mode: Mode
    client_ip: IPAddress | None
    headers: CIMultiDict[str]  # the client's headers after hygiene
    path: str  # normalised: what the rules see and what is forwarded
    query: str  # raw query string
    secure: bool  # served over TLS (directly or as told by a trusted proxy)
    host: str
    policy: Policy  # the policy in force when the request arrived, used throughout it
    request_id: str = field(default_factory=new_request_id)
    session: Session | None = None
    session_loaded: bool = False
    header_user: str | None = None  # header mode: the user named by a trusted proxy

    @cached_property
    def cookies(self) -> list[tuple[str, str]]:
        """The client's cookies, parsed once per request."""
        values = self.headers.getall("Cookie", ())
        if len(values) == 1:  # the usual case: a browser sends one Cookie header
            return list(_parsed(values[0]))
        return [pair for value in values for pair in _parsed(value)]

    def known_company(self) -> Company | None:
        """The company of whoever this request is known to come from so far (its session's
        user, or the user a trusted single sign-on names): its brand goes on every page."""
        user = self.session.user if self.session is not None else None
        user = user or self.header_user
        return self.company_for(user)

    def company_for(self, user: str | None) -> Company | None:
        """`user`'s company, by name, domain, or the directory groups of this request's session
        when it is `user`'s (portal mode keeps them in the session at sign-in)."""
        return self.policy.company_for(user, self.groups_of(user)) if user else None

    def groups_of(self, user: str | None) -> tuple[str, ...]:
        session = self.session
        if session is None or not user or session.user != user:
            return ()
        groups = session.identity.get("groups")
        return tuple(str(group) for group in groups) if isinstance(groups, list) else ()

    @property
    def path_qs(self) -> str:
        """This request's address as a path to come back to: the normalised path encoded again
        (a "?" or "#" inside the path stays part of it) and the raw query."""
        return encode_path(self.path) + ("?" + self.query if self.query else "")


# a browser sends the same Cookie header with each of its requests; one of a browser's size is
# kept (a header of a thousand tiny cookies would pin many times its length in pairs)
@remembered(entries=256, longest=2048, keep=lambda pairs: len(pairs) <= 32)
def _parsed(header: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_cookie_header(header))
