"""Portal mode's first factor against an LDAP directory (OpenLDAP) or Active Directory.

Search-then-bind: a service account (bind_dn) searches base_dn with user_filter for exactly one
entry (find(), before the password: the login waits on and counts wrong passwords under the user
that entry names), then a fresh connection binds as that entry's DN with the typed password (an
unknown user costs a bind too, so timing does not tell who exists). Direct bind: the bind name
is user_dn with the (DN-escaped) name, the bind comes first, and the entry is then read as the
user with user_filter, at that DN or, with base_dn, searched under it (for AD's
"{user}@corp.example" bind names); a filter that leaves out disabled accounts applies either
way.
Groups come from an attribute of the entry (memberOf) or a search (member={dn}); only those
directly under groups.base_dn count, named by their RDN (unique among siblings).

Refused before any request: an empty password (an LDAP bind with a DN and no password is an
unauthenticated bind, RFC 4513 5.1.2, which many servers answer with success), a password
ldap3's SASLprep refuses (a wrong password for known and unknown users alike) and a user name
with control characters or NUL. Filter values are RFC 4515-escaped, DN values RFC 4514-escaped.
A server that cannot be reached, times out, refuses the service account or answers with an
error raises DirectoryUnavailable: the login handler shows the 503 page and lets nobody in.
A disabled account is refused by the server's bind (OpenLDAP's ppolicy pwdAccountLockedTime,
AD's userAccountControl) or left out by user_filter, and counted as a wrong password.

Library: ldap3 (pure Python, synchronous), run in this module's own thread pool of pool_size
threads. bonsai (asyncio) was the other candidate: PyPI has no Linux wheel for it, so it builds
from source against libldap and libsasl (libldap2-dev, libsasl2-dev and a C compiler on every
machine and image; the build fails here without them), and TLS then goes through the system's
libldap settings rather than Python's ssl module. ldap3 installs as one wheel, verifies
certificates with Python's ssl (a CA file, hostname checked), and its blocking calls cost one
thread per check in flight, which pool_size bounds. Its last release is 2.9.1 (2021): stable
and widely used, but quiet; the calls used here are few and basic, so a switch stays cheap.

The module is past 400 lines because this account of the design is; what an entry says and the
TLS wrapper are in ldap_entries.py and ldap_tls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import queue
import secrets
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from ldap3 import BASE, LEVEL, SIMPLE, SUBTREE, Connection, Server
from ldap3.core.exceptions import (
    LDAPException,
    LDAPPasswordIsMandatoryError,
    LDAPSASLPrepError,
)
from ldap3.protocol.sasl.sasl import validate_simple_password

from gateway.identity.ldap_entries import attribute_values, first_value, group_name, same_dn
from gateway.identity.ldap_text import (
    acceptable_name,
    dn_key,
    escape_dn_value,
    escape_filter_value,
    fill,
    header_safe,
    plain,
)
from gateway.identity.ldap_tls import DirectoryTls
from gateway.identity.portal import PortalUser
from gateway.settings.model import Ldap, SettingsError

log = logging.getLogger("gateway.ldap")

INVALID_CREDENTIALS = 49
MAX_PASSWORD = 1024
MAX_GROUPS = 200
T = TypeVar("T")


class DirectoryUnavailable(Exception):
    """The directory could not answer (down, too slow, TLS refused, service account refused,
    an error result): the sign-in cannot be decided, so it fails closed."""


@dataclass(frozen=True)
class Found:
    """What the service account's search found for a typed name, before any password is
    checked (search-then-bind): the entries, and the user they name (`user_attribute`, lower
    case) when there is exactly one usable entry. The login counts wrong passwords under that
    name, so that every spelling the filter takes (uid or mail) is one count."""

    entries: tuple[tuple[str, dict[str, Any]], ...]
    user: str | None


class Directory:
    """One application's directory: a pool of service connections and the threads that use them."""

    def __init__(self, settings: Ldap, bind_password: str | None = None) -> None:
        self.settings = settings
        self._password = bind_password
        parts = urlsplit(settings.url)
        secure = parts.scheme == "ldaps"
        tls = None
        if secure or settings.start_tls:
            cafile = str(settings.ca_file) if settings.ca_file else None
            try:
                context = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:  # checked at start, not at the first sign-in
                reason = getattr(exc, "strerror", None) or exc
                raise SettingsError(f"cannot use the CA file {cafile}: {reason}") from None
            tls = DirectoryTls(context, parts.hostname or "")
        # a Server per connection: ldap3's Server remembers a refused address as unavailable
        # for a while, which would outlast the directory's own restart
        self._server = functools.partial(
            Server,
            parts.hostname or "",
            port=parts.port or (636 if secure else 389),
            use_ssl=secure,
            tls=tls,
            get_info="NO_INFO",
            connect_timeout=settings.connect_timeout,
        )
        # each step of a sign-in as a whole: a hung directory (it takes connections, never
        # answers, or answers a byte at a time) must not hold a sign-in for several timeouts
        self._deadline = settings.deadline or settings.connect_timeout + settings.timeout
        self._nobody = f"cn=no such user {secrets.token_hex(16)},{settings.base_dn}"
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._threads = ThreadPoolExecutor(settings.pool_size, thread_name_prefix="ldap")

    async def find(self, username: str) -> Found | None:
        """Search-then-bind: the service account's search for `username`, no password yet
        (check() then binds as what it found). None in direct-bind mode (nothing is searched
        before the bind) and for a name never sent to the directory. Raises
        DirectoryUnavailable."""
        name = username.strip()
        if self.settings.user_dn or not acceptable_name(name):
            return None
        return await self._run(self._find, name)

    async def check(
        self, username: str, password: str, found: Found | None = None
    ) -> PortalUser | None:
        """The user when the directory accepts the password; None for a wrong or empty
        password, an unknown, ambiguous or disabled user. `found`: find()'s answer for the
        same name, so the search is not repeated. Raises DirectoryUnavailable."""
        name = username.strip()
        if not password or len(password) > MAX_PASSWORD or not acceptable_name(name):
            return None  # never an unauthenticated bind, never a name that could mislead
        if not _bindable(password):
            return None  # for a known user and an unknown one alike: a wrong password
        return await self._run(self._check, name, password, found)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in the pool's threads, within the deadline (its wait for a free thread
        included). A thread still waiting on the directory then ends by its own timeouts; the
        sign-in does not wait for it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, self._guarded, work, *args)
        try:
            return await asyncio.wait_for(future, self._deadline)
        except TimeoutError:
            raise DirectoryUnavailable(f"no answer within {self._deadline:g} s") from None

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        while not self._idle.empty():
            self._unbind(self._idle.get_nowait())

    # everything below runs in the pool's threads

    def _guarded(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)`, any failure of the directory raised as DirectoryUnavailable."""
        try:
            return work(*args)
        except LDAPException as exc:
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:  # ssl and socket errors ldap3 lets through
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from None
        except DirectoryUnavailable:
            raise
        except Exception as exc:  # whatever else: still nobody let in, and never a 500
            log.exception("unexpected failure checking a password with the directory")
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from None

    def _check(self, name: str, password: str, found: Found | None) -> PortalUser | None:
        if self.settings.user_dn:
            return self._direct(name, password)
        return self._search_then_bind(name, password, found or self._find(name))

    def _find(self, name: str) -> Found:
        s = self.settings
        query = fill(s.user_filter, "{user}", escape_filter_value(name))
        entries = self._service(lambda conn: self._search(conn, s.base_dn, SUBTREE, query, 2))
        user = self._canonical(name, entries[0][1]) if len(entries) == 1 else None
        return Found(tuple(entries), user)

    def _search_then_bind(self, name: str, password: str, found: Found) -> PortalUser | None:
        entries = found.entries
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("the user filter finds several entries for %r; refused", name[:64])
            # an unknown user costs a bind too, so the answer's time does not tell who exists;
            # as an entry that cannot exist: cn=<name> might be a real one the filter leaves
            # out (a service account beside the people), whose ppolicy would count, and lock
            # it after, every stranger's guess
            dn = self._nobody
            with contextlib.suppress(DirectoryUnavailable, LDAPException, OSError):
                conn = self._connect(dn, password)
                try:
                    self._bind(conn)
                finally:
                    self._unbind(conn)
            return None
        dn, attributes = entries[0]
        conn = self._connect(dn, password)
        try:
            if not self._bind(conn):
                return None
        finally:
            self._unbind(conn)
        groups = self._groups(attributes, dn, None)
        return self._user(name, attributes, groups)

    def _direct(self, name: str, password: str) -> PortalUser | None:
        s = self.settings
        dn = fill(s.user_dn, "{user}", escape_dn_value(name))
        conn = self._connect(dn, password)
        try:
            if not self._bind(conn):
                return None
            query = fill(s.user_filter, "{user}", escape_filter_value(name))
            if s.base_dn:  # user_dn may be no DN (AD takes "{user}@corp.example" too)
                entries = self._search(conn, s.base_dn, SUBTREE, query, 2)
            else:
                entries = self._search(conn, dn, BASE, query, 1)
            if len(entries) != 1:
                return None  # bound, but the filter leaves this account out (disabled)
            found, attributes = entries[0]
            if s.base_dn and not self._bound_as(conn, dn, found, attributes):
                # the search under base_dn found another entry than the one whose password
                # was right (the bind name and the filter read different attributes)
                log.warning("the entry found for %r is not the account that bound", name[:64])
                return None
            groups = self._groups(attributes, found, conn)
        finally:
            self._unbind(conn)
        return self._user(name, attributes, groups)

    def _bound_as(self, conn: Connection, bound: str, found: str, attributes: Any) -> bool:
        """Whether `found` is the account `conn` is bound as: the directory's own "Who am I?"
        (RFC 4532) answer, a DN or (Active Directory) DOMAIN\\name, or else the bind name when
        it is a DN. Anything else is not proof, and refused."""
        answer = conn.extend.standard.who_am_i()
        if isinstance(answer, bytes):
            answer = answer.decode("utf-8", "replace")
        answer = str(answer or "")
        if answer.startswith("dn:"):
            return same_dn(answer[3:], found)
        if answer.startswith("u:"):
            own = attribute_values(attributes, self.settings.user_attribute)
            account = answer[2:].rsplit("\\", 1)[-1].split("@", 1)[0]
            return len(own) == 1 and account.casefold() == own[0].strip().casefold()
        return "=" in bound and same_dn(bound, found)

    def _user(
        self, name: str, attributes: dict[str, Any], groups: tuple[str, ...]
    ) -> PortalUser | None:
        """The user as the directory names them (user_attribute), not as typed: a filter that
        takes several names (uid or mail) must not make one person two gateway users, each
        with a second factor of its own to enrol."""
        s = self.settings
        canonical = self._canonical(name, attributes)
        if canonical is None:
            return None
        # what goes into a header upstream carries no line break or control character: the
        # user's own name stands in for such a display name, such an address is left out
        display = first_value(attributes, s.name_attribute).strip()
        display = display if display and plain(display) else canonical
        email = first_value(attributes, s.email_attribute).strip()
        email = email if plain(email) else ""
        email = email or (canonical if "@" in canonical else "")
        return PortalUser(canonical, "", display, email, groups)

    def _canonical(self, name: str, attributes: dict[str, Any]) -> str | None:
        """The entry's one user_attribute value, lower case; None (logged) when it has none
        usable or several (which one is the person? another user's name may be among them)."""
        s = self.settings
        values = attribute_values(attributes, s.user_attribute)
        if len(values) > 1:
            log.error("the entry found for %r has several %s values", name[:64], s.user_attribute)
            return None
        canonical = values[0].strip().lower() if values else ""
        if not canonical or not acceptable_name(canonical):
            log.error("the entry found for %r has no usable %s", name[:64], s.user_attribute)
            return None
        return canonical

    def _groups(
        self, attributes: dict[str, Any], dn: str, conn: Connection | None
    ) -> tuple[str, ...]:
        """The names of the user's groups. Only groups directly under groups.base_dn count:
        a group's name is unique only among its siblings (cn=admins,ou=sales and
        cn=admins,ou=it would both be "admins", and a policy listing the one would take the
        other's members). A name two of the user's groups would share (a name_attribute
        other than their RDN's) is left out: which one a policy means cannot be told."""
        lookup = self.settings.groups
        if lookup is None:
            return ()
        if lookup.attribute:
            found: list[tuple[str, dict[str, Any]]] = [
                (value, {}) for value in attribute_values(attributes, lookup.attribute)
            ]
        else:
            query = fill(lookup.filter, "{dn}", escape_filter_value(dn))

            def search(c: Connection) -> list[tuple[str, dict[str, Any]]]:
                attrs = [lookup.name_attribute]
                return self._search(c, lookup.base_dn, LEVEL, query, MAX_GROUPS, attrs)

            found = search(conn) if conn is not None else self._service(search)
        named: dict[str, tuple[str, set[Any]]] = {}  # lower case, as policies match
        for group, group_attributes in found:
            name = group_name(lookup, group, group_attributes)
            if name:
                named.setdefault(name.lower(), (name, set()))[1].add(dn_key(group))
        kept = []
        for name, groups in named.values():
            if len(groups) > 1:
                log.warning(
                    "%d groups of %s are named %r: none of them counts", len(groups), dn, name
                )
            elif header_safe(name):
                kept.append(name)
        return tuple(kept[:MAX_GROUPS])

    def _search(
        self,
        conn: Connection,
        base: str,
        scope: Literal["BASE", "LEVEL", "SUBTREE"],
        query: str,
        limit: int,
        attributes: list[str] | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        s = self.settings
        wanted = attributes or [s.user_attribute, s.name_attribute, s.email_attribute]
        if attributes is None and s.groups is not None and s.groups.attribute:
            wanted.append(s.groups.attribute)
        conn.search(
            base, query, scope, attributes=wanted, size_limit=limit,
            time_limit=max(1, int(s.timeout)),
        )  # fmt: skip
        code = conn.result.get("result")
        if code == 4:  # sizeLimitExceeded: more than `limit` entries
            return [("", {})] * (limit + 1)
        if code == 32 and scope == BASE:  # noSuchObject: no such user (direct bind)
            return []
        if code != 0:
            raise DirectoryUnavailable(f"search failed: {conn.result.get('description')}")
        return [
            (str(item["dn"]), dict(item.get("attributes") or {}))
            for item in conn.response or ()
            if item.get("type") == "searchResEntry"
        ]

    def _service(self, work: Any) -> Any:
        """`work(conn)` on a pooled service connection; a stale one (the server restarted) is
        dropped and the work tried once on a new one."""
        for attempt in (1, 2):
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._service_connection()
            try:
                result = work(conn)
            except (LDAPException, OSError):
                self._unbind(conn)
                if attempt == 2:
                    raise
                continue
            self._idle.put(conn)
            return result
        raise AssertionError("unreachable")

    def _service_connection(self) -> Connection:
        conn = self._connect(self.settings.bind_dn, self._password or "")
        if not self._bind(conn):
            self._unbind(conn)
            raise DirectoryUnavailable("the directory refused the service account (bind_dn)")
        return conn

    def _connect(self, dn: str, password: str) -> Connection:
        """A connection that will bind as `dn` (simple bind), opened, StartTLS done if asked:
        the password goes nowhere before TLS is up."""
        conn = Connection(
            self._server(),
            user=dn,
            password=password or None,
            authentication=SIMPLE,
            read_only=True,
            receive_timeout=max(1, math.ceil(self.settings.timeout)),  # whole seconds
            raise_exceptions=False,
            # never follow a referral answer to another host with the credentials; continuation
            # references (AD's root has them to its DNS zones) are skipped by _search
            auto_referrals=False,
            check_names=True,
        )
        conn.open()
        if self.settings.start_tls and not conn.start_tls():
            self._unbind(conn)
            raise DirectoryUnavailable("the directory refused StartTLS")
        return conn

    def _bind(self, conn: Connection) -> bool:
        """True when the directory accepts the password; False on invalidCredentials (wrong
        password, locked or disabled account); any other answer means it cannot decide."""
        if not conn.password:  # an unauthenticated bind would "succeed"
            return False
        try:
            if conn.bind():
                return True
        except (LDAPSASLPrepError, LDAPPasswordIsMandatoryError):
            return False  # a password the library will not send (_bindable): a wrong one
        if conn.result.get("result") == INVALID_CREDENTIALS:
            return False
        raise DirectoryUnavailable(f"bind failed: {conn.result.get('description')}")

    @staticmethod
    def _unbind(conn: Connection) -> None:
        with contextlib.suppress(LDAPException, OSError):
            conn.unbind()


def _bindable(password: str) -> bool:
    """Whether ldap3 sends `password` in a simple bind: it prepares it with SASLprep (RFC
    4013) and refuses one with a prohibited character (a control character, a private-use or
    unassigned one). Such a password cannot be checked at all; refused only for a known user
    (the bind raised) it gave that user away, so it is a wrong password for everyone, before
    any request (a person whose password holds such a character cannot sign in here)."""
    try:
        validate_simple_password(password)
    except LDAPException:
        return False
    return True
