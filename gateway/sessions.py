"""Gateway sessions: their levels, lifetimes, and how they are kept (encrypted) in the store."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any

from gateway.clock import Clock
from gateway.crypto import Cipher, DecryptionFailed
from gateway.store import Store

MAX_FAILURES = 5  # wrong codes before a pending session ends and the password is asked again
PENDING_TTL = 15 * 60  # an unfinished login (anonymous jar or first factor) lives this long
TOUCH_EVERY = 60  # idle time is recorded with this granularity, to spare the store a write per hit
DEFAULT_IDLE = 30 * 60
DEFAULT_LIFETIME = 12 * 3600


# How a session reached the verified level (Session.second_factor).
TRUSTED_NETWORK = "trusted_network"
DEFERRAL = "deferral"


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
    scopes: dict[str, list[str | None]] = field(default_factory=dict)  # name -> [path, domain]
    pending_totp: str | None = None  # encrypted secret shown on the enrolment page
    failures: int = 0  # wrong codes in this pending session
    # a method's state between its pages (a WebAuthn challenge, a phone number being verified,
    # new recovery codes to show once), by method name; JSON values only, encrypted with the rest
    scratch: dict[str, Any] = field(default_factory=dict)
    second_factor: str | None = None  # how the verified level was reached: totp, deferral, ...
    identity: dict[str, Any] = field(default_factory=dict)  # portal/header: email, name, groups
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


def cookie_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class SessionManager:
    def __init__(self, store: Store, cipher: Cipher, clock: Clock) -> None:
        self.store = store
        self.cipher = cipher
        self.clock = clock

    async def load(self, session_id: str | None, app: str) -> Session | None:
        """The live session for this cookie, or None: unknown, expired, other app, tampered."""
        if not session_id or len(session_id) > 128:
            return None
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
            await self.save(session)
        return session

    def new(self, app: str) -> Session:
        now = self.clock()
        return Session(id=new_id(), app=app, created=now, last_seen=now)

    async def save(self, session: Session) -> bool:
        """Store the session; False when it was stored before but has ended since (a logout or
        reset elsewhere): it stays ended."""
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

    async def end(self, session: Session) -> None:
        await self.store.delete_session(storage_key(session.id))

    async def end_all(self, user: str) -> int:
        return await self.store.delete_user_sessions(user)

    async def sign_out(self, session: Session) -> int:
        """Signing out ends every session of the user, on every browser and application (a
        stolen or forgotten session goes with it); an anonymous one ends alone."""
        await self.end(session)
        if session.user and session.level is not Level.ANONYMOUS:
            return 1 + await self.end_all(session.user)
        return 1
