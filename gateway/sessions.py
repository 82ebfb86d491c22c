"""Gateway sessions: their levels, lifetimes, and how they are kept (encrypted) in the store.

One module, past 400 lines: the Session record, its encryption and the SessionManager's memory
of recent reads (and the count of changes that keeps a read begun before one from being
remembered) decide together when a session may be believed without the store; split, the rule
that an ended session stops at once here and within RECHECK_AFTER elsewhere would be spread
over files that must change in step."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from gateway.audit import audit
from gateway.clock import Clock
from gateway.crypto import Cipher, DecryptionFailed
from gateway.i18n import N_
from gateway.store import Store
from gateway.store.base import StoredSession

MAX_FAILURES = 5  # wrong codes before a pending session ends and the password is asked again
PENDING_TTL = 15 * 60  # an unfinished login (anonymous jar or first factor) lives this long
TOUCH_EVERY = 60  # idle time is recorded with this granularity, to spare the store a write per hit
DEFAULT_IDLE = 30 * 60
# A verified session read from the store is believed for this long (real seconds) before it is
# read again: the bound on how late a logout or reset made by another instance or worker (or the
# operator's CLI) takes effect here. On the instance that made it, it takes effect at once.
RECHECK_AFTER = 2.0
RECENT_MAX = 4096  # verified sessions remembered at once; the oldest read is forgotten first
DEFAULT_LIFETIME = 12 * 3600
USER_AGENT_MAX = 256  # characters of the User-Agent kept with a session
HANDLE_LENGTH = 16  # hex digits of a session's handle (see SessionManager.handle)


# How a session reached the verified level (Session.second_factor).
TRUSTED_NETWORK = "trusted_network"
DEFERRAL = "deferral"
REMEMBERED = "remembered"  # a remembered browser (gateway.signin.remember): not a real factor


class Level(IntEnum):
    ANONYMOUS = 0
    FIRST_FACTOR = 1
    VERIFIED = 2


@dataclass
class Session:
    id: str
    app: str
    level: Level = Level.ANONYMOUS
    user: str | None = None
    created: float = 0.0
    last_seen: float = 0.0
    verified_at: float | None = None
    idle_timeout: float = DEFAULT_IDLE
    lifetime: float = DEFAULT_LIFETIME
    # intercept mode: the application's session cookies, held here until the second factor
    jar: dict[str, str] = field(default_factory=dict)  # cookie name -> value
    withheld: list[str] = field(default_factory=list)  # raw Set-Cookie headers to release
    bound: dict[str, str] = field(default_factory=dict)  # cookie name -> sha256 of the value
    # cookie name -> [sha256 of the value it replaced, until when that one is still honoured]
    replaced: dict[str, list[Any]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)  # sha256 of bearer tokens bound here
    scopes: dict[str, list[str | None]] = field(default_factory=dict)  # name -> [path, domain]
    pending_totp: str | None = None  # encrypted secret shown on the enrolment page
    failures: int = 0  # wrong codes in this pending session
    # a method's state between its pages (a WebAuthn challenge, a phone number being verified,
    # new recovery codes to show once), by method name; JSON values only, encrypted with the rest
    scratch: dict[str, Any] = field(default_factory=dict)
    second_factor: str | None = None  # how the verified level was reached: totp, deferral, ...
    identity: dict[str, Any] = field(default_factory=dict)  # portal/header: email, name, groups
    # where the sign-in came from, for the sessions page: the browser's User-Agent (cut to
    # USER_AGENT_MAX) and the client address at the second factor; None before they were kept
    user_agent: str | None = None
    address: str | None = None
    # whether this id is in the store already (not saved with the rest): a stored session is
    # saved again only while it exists, so one ended meanwhile is never brought back
    stored: bool = field(default=False, repr=False, compare=False)

    def expires_at(self) -> float:
        if self.level is Level.VERIFIED:
            return min(self.last_seen + self.idle_timeout, self.created + self.lifetime)
        return self.created + PENDING_TTL

    def to_json(self) -> str:
        data = asdict(self)
        data["level"] = int(self.level)
        del data["stored"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Session:
        data = json.loads(text)
        data["level"] = Level(data["level"])
        data.pop("stored", None)
        return cls(**data, stored=True)


def new_id() -> str:
    """256 random bits."""
    return secrets.token_urlsafe(32)


def storage_key(session_id: str) -> str:
    """Sessions are stored under a hash of their id: a copy of the store opens no session."""
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


REPLACED_GRACE = 30.0  # seconds a rotated application cookie's old value is still honoured


def rebind(session: Session, name: str, value: str, now: float) -> None:
    """Bind a new value of an application cookie; the old one stays good for a moment, for the
    requests the browser sent before it saw the new one."""
    digest = cookie_digest(value)
    old = session.bound.get(name)
    if old is not None and old != digest:
        session.replaced[name] = [old, now + REPLACED_GRACE]
    session.bound[name] = digest


def cookie_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


# How a session reached the verified level, in words (Session.second_factor).
FACTOR_WORDS = {
    "totp": N_("authenticator app"),
    "webauthn": N_("passkey or security key"),
    "sms": N_("text message"),
    "voice": N_("phone call"),
    "email": N_("email code"),
    "recovery": N_("recovery code"),
    TRUSTED_NETWORK: N_("trusted network (no second factor asked)"),
    DEFERRAL: N_("password only (two-step sign-in put off)"),
    REMEMBERED: N_("remembered browser (no second factor asked)"),
}


def factor_words(via: str | None) -> str:
    if via is None:
        return "unknown"
    return FACTOR_WORDS.get(via, via.replace("_", " "))


def browser_parts(user_agent: str | None) -> tuple[str | None, str | None]:
    """The browser ("Firefox 133") and the system ("Windows 10") a User-Agent names
    (ua-parser), each None when it names nothing known."""
    if not user_agent:
        return None, None
    try:
        import ua_parser  # loaded when a sessions list is first shown, not at start

        found = ua_parser.parse(user_agent[:USER_AGENT_MAX])
    except Exception:  # a parser error (or no file to load it from) leaves it unknown, never a 500
        return None, None
    agent, system = found.user_agent, found.os
    browser = name = None
    if agent is not None and agent.family != "Other":
        browser = agent.family + (f" {agent.major}" if agent.major else "")
    if system is not None and system.family != "Other":
        name = system.family + (f" {system.major}" if system.major else "")
    return browser, name


def browser_words(user_agent: str | None) -> str:
    """ "Firefox 133 on Windows 10", "unknown browser": in English, for the CLI and the API
    (the pages say it in the person's language, gateway.handlers.account.sessions)."""
    browser, system = browser_parts(user_agent)
    words = browser or "unknown browser"
    return f"{words} on {system}" if system else words


def is_handle(text: str) -> bool:
    """Whether `text` could be a handle (SessionManager.handle): HANDLE_LENGTH hex digits."""
    return len(text) == HANDLE_LENGTH and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class ActiveSession:
    """One of a user's live sessions, as the sessions page, the admin pages and the CLI list
    it: `handle` names it there (never the session id, which is its cookie)."""

    handle: str
    key: str  # the storage key
    session: Session

    @property
    def browser(self) -> str:
        return browser_words(self.session.user_agent)

    @property
    def factor(self) -> str:
        return factor_words(self.session.second_factor)


class SessionManager:
    def __init__(
        self,
        store: Store,
        cipher: Cipher,
        clock: Clock,
        recheck_after: float = RECHECK_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
        handle_key: str | None = None,
    ) -> None:
        """`handle_key`: the secret that session handles are keyed with, the same on every
        instance (the encryption key); a random one when not given (tests)."""
        self._handle_key = (
            handle_key.encode("utf-8") if handle_key is not None else secrets.token_bytes(32)
        )
        self.store = store
        self.cipher = cipher
        self.clock = clock
        self.recheck_after = recheck_after
        self.monotonic = monotonic
        # session id -> (when it was read, monotonic; the session): the forwarding path's
        # verified sessions, so that a burst of requests costs one store read, not one each
        self._recent: dict[str, tuple[float, Session]] = {}
        # (session id, app) -> the forwarding path's store read of it in progress: requests
        # that find no recent copy wait for that read instead of each making its own (when a
        # copy grows old, every request in flight for that session missed it at once)
        self._reading: dict[tuple[str, str], asyncio.Future[Session | None]] = {}
        # how many times sessions changed or ended here: a read that saw one of them before
        # (it began earlier) must not leave its copy as the recent one
        self._changes = 0

    async def load(self, session_id: str | None, app: str, recent: bool = False) -> Session | None:
        """The live session for this cookie, or None: unknown, expired, other app, tampered.

        `recent`: a verified session read from the store less than `recheck_after` seconds ago
        may be answered from memory. Only for the forwarding paths (proxy, forward auth): the
        same object is shared by their requests, and the gateway's own pages, which change
        sessions, always read the store."""
        if not session_id or len(session_id) > 128:
            return None
        if recent and self.recheck_after > 0:
            found = self._recent.get(session_id)
            if found is not None:
                read_at, known = found
                now = self.clock()
                if (
                    self.monotonic() - read_at < self.recheck_after
                    and known.app == app
                    and now - known.last_seen < TOUCH_EVERY  # else read, and record activity
                    and known.expires_at() > now
                ):
                    return known
                del self._recent[session_id]
            return await self._read_once(session_id, app)
        return await self._read(session_id, app)

    async def _read_once(self, session_id: str, app: str) -> Session | None:
        """`_read` for the forwarding paths, one read at a time per session and application:
        a request arriving while one is in progress takes its answer when that is a verified
        session or none (a session in the making is read again: each request changes its own
        copy). A read begun before the session last changed here is not joined (`forget`)."""
        key = (session_id, app)
        reading = self._reading.get(key)
        if reading is not None:
            session = await asyncio.shield(reading)
            if session is None or session.level is Level.VERIFIED:
                return session  # shared, as a recent copy is
            return await self._read(session_id, app)  # a session in the making: its own copy
        reading = asyncio.ensure_future(self._read_and_remember(session_id, app))
        self._reading[key] = reading

        def done(task: asyncio.Future[Session | None]) -> None:
            if self._reading.get(key) is task:
                del self._reading[key]
            if not task.cancelled():
                task.exception()  # retrieved: each waiter has it raised

        reading.add_done_callback(done)
        return await asyncio.shield(reading)

    async def _read_and_remember(self, session_id: str, app: str) -> Session | None:
        changes = self._changes
        session = await self._read(session_id, app)
        if session is not None and session.level is Level.VERIFIED and changes == self._changes:
            self._remember(session)  # nothing changed here while it was read
        return session

    def _remember(self, session: Session) -> None:
        if self.recheck_after <= 0:
            return
        recent = self._recent
        if len(recent) >= RECENT_MAX:
            now = self.monotonic()
            for sid in [sid for sid, (at, _) in recent.items() if now - at >= self.recheck_after]:
                del recent[sid]
            while len(recent) >= RECENT_MAX:
                del recent[next(iter(recent))]
        recent[session.id] = (self.monotonic(), session)

    def forget(self, session_id: str) -> None:
        """Read this session from the store next time (it changed or ended here)."""
        self._recent.pop(session_id, None)
        self._changes += 1  # a read begun before the change leaves no copy behind,
        self._reading.clear()  # and no later request joins it

    def _forget_key(self, key: str) -> None:
        for sid in [sid for sid in self._recent if storage_key(sid) == key]:
            del self._recent[sid]
        self._changes += 1
        self._reading.clear()

    def _forget_user(self, user: str) -> None:
        for sid in [sid for sid, (_, s) in self._recent.items() if s.user == user]:
            del self._recent[sid]
        self._changes += 1
        self._reading.clear()

    async def _read(self, session_id: str, app: str) -> Session | None:
        key = storage_key(session_id)
        now = self.clock()
        blob = await self.store.get_session(key, now)
        if blob is None:
            return None
        try:
            session = Session.from_json(self.cipher.decrypt(blob, key))
        except (DecryptionFailed, ValueError, TypeError, KeyError):
            return None
        if session.app != app or session.id != session_id or session.expires_at() <= now:
            return None
        if session.level is Level.VERIFIED and now - session.last_seen >= TOUCH_EVERY:
            session.last_seen = now
            if not await self.save(session):
                return None  # ended between the read and the write
        return session

    def new(self, app: str) -> Session:
        now = self.clock()
        return Session(id=new_id(), app=app, created=now, last_seen=now)

    async def save(self, session: Session) -> bool:
        """Store the session; False when it was stored before but has ended since (a logout or
        reset elsewhere): it stays ended."""
        self.forget(session.id)
        key = storage_key(session.id)
        blob = self.cipher.encrypt(session.to_json(), key)
        if session.stored:
            return await self.store.update_session(key, session.user, blob, session.expires_at())
        await self.store.put_session(key, session.user, blob, session.expires_at())
        session.stored = True
        return True

    async def promote(self, session: Session, level: Level, user: str | None = None) -> Session:
        """Move to a new level under a new id; the old id stops working at once."""
        old_id = session.id
        self.forget(old_id)
        was_stored = session.stored
        now = self.clock()
        session.id = new_id()
        session.stored = False
        session.level = level
        if user is not None:
            session.user = user
        session.created = session.last_seen = now
        if level is Level.VERIFIED:
            session.verified_at = now
        await self.save(session)
        if not await self.store.delete_session(storage_key(old_id)) and was_stored:
            # ended meanwhile (a logout or reset elsewhere): the new one ends with it, so
            # an answer racing a reset does not bring the user back
            await self.store.delete_session(storage_key(session.id))
        return session

    async def stored(self, session: Session) -> bool:
        """Whether `session` is still in the store (not ended meanwhile, on any instance)."""
        return await self.store.get_session(storage_key(session.id), self.clock()) is not None

    async def end(self, session: Session) -> None:
        self.forget(session.id)
        await self.store.delete_session(storage_key(session.id))

    async def end_all(self, user: str) -> int:
        self._forget_user(user)
        return await self.store.delete_user_sessions(user)

    async def sign_out(self, session: Session) -> int:
        """Signing out ends every session of the user, on every browser and application (a
        stolen or forgotten session goes with it), and, when this session was verified (even if
        stepped down since), forgets the browsers remembered for them; an anonymous one ends
        alone."""
        await self.end(session)
        if session.user and session.level is not Level.ANONYMOUS:
            ended = 1 + await self.end_all(session.user)
            # a password alone forgets no browser; a verified session, or one stepped down for
            # a fresh second factor (a step-up or "Confirm it is you" under way), forgets every
            # browser remembered for the user ("Remember this browser")
            if session.level is not Level.VERIFIED and session.verified_at is None:
                return ended
            forgotten = await self.store.forget_browsers(session.user)
            if forgotten:
                audit(
                    "browsers_forgotten", user=session.user, reason="sign_out", forgotten=forgotten
                )
            return ended
        return 1

    # a user's sessions, for the sessions page, the admin pages and the CLI

    def handle(self, key: str) -> str:
        """A short keyed digest of a storage key: names a session on the pages without being
        its id (its cookie) or its storage key, the same on every instance."""
        digest = hmac.new(
            self._handle_key, b"session-handle:" + key.encode("ascii", "replace"), "sha256"
        )
        return digest.hexdigest()[:HANDLE_LENGTH]

    async def active(self, user: str) -> list[ActiveSession]:
        """The user's verified sessions still live now, latest sign-in first. One the store
        lists but this key cannot open, or another user's, is left out."""
        now = self.clock()
        found = []
        for stored in await self.store.list_user_sessions(user, now):
            session = self._open(stored)
            if session is None or session.user != user or session.level is not Level.VERIFIED:
                continue
            if session.expires_at() <= now:
                continue
            found.append(ActiveSession(self.handle(stored.key), stored.key, session))
        found.sort(key=lambda a: (-a.session.created, a.handle))
        return found

    def _open(self, stored: StoredSession) -> Session | None:
        try:
            return Session.from_json(self.cipher.decrypt(stored.blob, stored.key))
        except (DecryptionFailed, ValueError, TypeError, KeyError):
            return None

    async def end_handle(self, user: str, handle: str) -> ActiveSession | None:
        """End the user's session named by `handle`; None when the user has no such session
        (ended already, or never theirs). Ended here at once, elsewhere within recheck_after."""
        if not is_handle(handle):
            return None
        for found in await self.active(user):
            if hmac.compare_digest(found.handle, handle):
                self._forget_key(found.key)
                await self.store.delete_session(found.key)
                return found
        return None

    async def end_others(self, user: str, keep: str | None) -> int:
        """End every session of the user but the one with id `keep` (none: all of them),
        pending sign-ins too. Returns how many ended."""
        kept = storage_key(keep) if keep else None
        ended = 0
        for stored in await self.store.list_user_sessions(user, self.clock()):
            if stored.key == kept:
                continue
            self._forget_key(stored.key)
            ended += int(await self.store.delete_session(stored.key))
        return ended
