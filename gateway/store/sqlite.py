"""The embedded SQLite backend: one file, survives restarts, for a single gateway process.

Each call is a single indexed statement on a local file in WAL mode, so it runs on the event
loop directly; a thread hop would cost more than the query.

Long (over 400 lines) because it is one class implementing the whole Store protocol, one short
statement per operation; a split by concern (sessions, remembered browsers) is planned.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from gateway.store.base import (
    BROWSERS_KEPT,
    MEMBER_OF,
    Deferral,
    RememberedBrowser,
    StoredSession,
    StoreUnavailable,
    UserRecord,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, user TEXT, blob TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
CREATE TABLE IF NOT EXISTS enrolments (
    user TEXT NOT NULL, method TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (user, method));
CREATE TABLE IF NOT EXISTS totp_steps (user TEXT PRIMARY KEY, step INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    key TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sends (user TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_key ON failures(key, at);
CREATE TABLE IF NOT EXISTS failure_keys (
    name TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (name, key));
CREATE INDEX IF NOT EXISTS sends_user ON sends(user, at);
CREATE TABLE IF NOT EXISTS enforcement (
    company TEXT PRIMARY KEY, since REAL NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holds (name TEXT PRIMARY KEY, token TEXT NOT NULL, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deferrals (
    user TEXT PRIMARY KEY, company TEXT NOT NULL, since REAL NOT NULL, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY, company TEXT, first_seen REAL NOT NULL, facts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS users_company ON users(company, user);
CREATE TABLE IF NOT EXISTS browsers (
    user TEXT NOT NULL, browser TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (user, browser));
CREATE TABLE IF NOT EXISTS known_browsers (
    user TEXT NOT NULL, browser TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (user, browser));
CREATE TABLE IF NOT EXISTS remembered (
    user TEXT NOT NULL, handle TEXT NOT NULL, record TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (user, handle));
CREATE INDEX IF NOT EXISTS remembered_until ON remembered(until);
"""


def path_from_url(url: str) -> Path:
    """`sqlite:///var/lib/gateway/gateway.db` is the absolute path /var/lib/gateway/gateway.db."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not an SQLite store URL: {url!r}")
    return Path(url[len("sqlite://") :])


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._db

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=2000")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store error: {exc}") from exc

    async def ping(self) -> None:
        self._run("SELECT 1").fetchone()

    async def get_session(self, key: str, now: float) -> str | None:
        row = self._run(
            "SELECT blob FROM sessions WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        return None if row is None else str(row[0])

    async def put_session(self, key: str, user: str | None, blob: str, expires_at: float) -> None:
        self._run(
            "INSERT INTO sessions (key, user, blob, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET user = excluded.user, blob = excluded.blob, "
            "expires_at = excluded.expires_at",
            (key, user, blob, expires_at),
        )

    async def update_session(
        self, key: str, user: str | None, blob: str, expires_at: float
    ) -> bool:
        cur = self._run(
            "UPDATE sessions SET user = ?, blob = ?, expires_at = ? WHERE key = ?",
            (user, blob, expires_at, key),
        )
        return cur.rowcount == 1

    async def delete_session(self, key: str) -> bool:
        return self._run("DELETE FROM sessions WHERE key = ?", (key,)).rowcount == 1

    async def delete_user_sessions(self, user: str) -> int:
        return self._run("DELETE FROM sessions WHERE user = ?", (user,)).rowcount

    async def list_user_sessions(self, user: str, now: float) -> list[StoredSession]:
        rows = self._run(
            "SELECT key, blob, expires_at FROM sessions WHERE user = ? AND expires_at > ? "
            "ORDER BY key",
            (user, now),
        ).fetchall()
        return [StoredSession(str(key), str(blob), float(exp)) for key, blob, exp in rows]

    async def purge_expired(self, now: float) -> int:
        purged = self._run("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount
        purged += self._run("DELETE FROM codes WHERE expires_at <= ?", (now,)).rowcount
        purged += self._run("DELETE FROM sends WHERE at < ?", (now - 86400,)).rowcount
        purged += self._run("DELETE FROM failures WHERE at < ?", (now - 86400,)).rowcount
        purged += self._run("DELETE FROM failure_keys WHERE at < ?", (now - 86400,)).rowcount
        purged += self._run("DELETE FROM holds WHERE until <= ?", (now,)).rowcount
        purged += self._run("DELETE FROM browsers WHERE at < ?", (now - BROWSERS_KEPT,)).rowcount
        purged += self._run(
            "DELETE FROM known_browsers WHERE at < ?", (now - BROWSERS_KEPT,)
        ).rowcount
        purged += self._run("DELETE FROM remembered WHERE until <= ?", (now,)).rowcount
        return purged

    async def get_enrolment(self, user: str, method: str) -> dict[str, Any] | None:
        row = self._run(
            "SELECT data FROM enrolments WHERE user = ? AND method = ?", (user, method)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def put_enrolment(self, user: str, method: str, data: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO enrolments (user, method, data) VALUES (?, ?, ?) "
            "ON CONFLICT(user, method) DO UPDATE SET data = excluded.data",
            (user, method, json.dumps(data)),
        )

    async def delete_enrolments(self, user: str) -> int:
        self._run("DELETE FROM totp_steps WHERE user = ?", (user,))
        return self._run("DELETE FROM enrolments WHERE user = ?", (user,)).rowcount

    async def delete_enrolment(self, user: str, method: str) -> bool:
        cur = self._run("DELETE FROM enrolments WHERE user = ? AND method = ?", (user, method))
        return cur.rowcount == 1

    async def replace_enrolment(
        self, user: str, method: str, old: dict[str, Any], new: dict[str, Any]
    ) -> bool:
        cur = self._run(
            "UPDATE enrolments SET data = ? WHERE user = ? AND method = ? AND data = ?",
            (json.dumps(new), user, method, json.dumps(old)),
        )
        return cur.rowcount == 1

    async def put_code(self, key: str, data: dict[str, Any], expires_at: float) -> None:
        self._run(
            "INSERT INTO codes (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) "
            "DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            (key, json.dumps(data), expires_at),
        )

    async def get_code(self, key: str, now: float) -> dict[str, Any] | None:
        row = self._run(
            "SELECT data FROM codes WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def take_code(self, key: str, now: float) -> dict[str, Any] | None:
        rows = self._run(  # fetchall: the statement ends, and with it the write
            "DELETE FROM codes WHERE key = ? AND expires_at > ? RETURNING data", (key, now)
        ).fetchall()
        return dict(json.loads(rows[0][0])) if rows else None

    async def delete_code(self, key: str) -> None:
        self._run("DELETE FROM codes WHERE key = ?", (key,))

    async def record_failure(self, key: str, at: float) -> None:
        self._run("DELETE FROM failures WHERE at < ?", (at - 86400,))
        self._run("INSERT INTO failures (key, at) VALUES (?, ?)", (key, at))

    async def failures_since(self, key: str, since: float) -> list[float]:
        rows = self._run(
            "SELECT at FROM failures WHERE key = ? AND at >= ? ORDER BY at", (key, since)
        ).fetchall()
        return [float(r[0]) for r in rows]

    async def clear_failures(self, key: str) -> None:
        self._run("DELETE FROM failures WHERE key = ?", (key,))

    async def note_failure_key(self, name: str, key: str, at: float) -> None:
        self._run("DELETE FROM failure_keys WHERE name = ? AND at < ?", (name, at - 86400))
        self._run(
            "INSERT INTO failure_keys (name, key, at) VALUES (?, ?, ?) ON CONFLICT(name, key) "
            "DO UPDATE SET at = MAX(failure_keys.at, excluded.at)",
            (name, key, at),
        )

    async def failure_keys(self, name: str, since: float) -> list[str]:
        rows = self._run(
            "SELECT key FROM failure_keys WHERE name = ? AND at >= ? ORDER BY key", (name, since)
        ).fetchall()
        return [str(r[0]) for r in rows]

    async def reserve_send(self, user: str, at: float, pause: float, per_hour: int) -> bool:
        cur = self._run(
            "INSERT INTO sends (user, at) SELECT ?, ? WHERE "
            "(SELECT COUNT(*) FROM sends WHERE user = ? AND at > ?) < ? AND "
            "NOT EXISTS (SELECT 1 FROM sends WHERE user = ? AND at > ?)",
            (user, at, user, at - 3600, per_hour, user, at - pause),
        )
        return cur.rowcount == 1

    async def acquire(self, name: str, token: str, now: float, ttl: float) -> bool:
        cur = self._run(
            "INSERT INTO holds (name, token, until) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
            "SET token = excluded.token, until = excluded.until WHERE holds.until <= ?",
            (name, token, now + ttl, now),
        )
        return cur.rowcount == 1

    async def release(self, name: str, token: str) -> None:
        self._run("DELETE FROM holds WHERE name = ? AND token = ?", (name, token))

    async def release_send(self, user: str, at: float) -> None:
        self._run("DELETE FROM sends WHERE user = ? AND at = ?", (user, at))

    async def sends_since(self, user: str, since: float) -> list[float]:
        rows = self._run(
            "SELECT at FROM sends WHERE user = ? AND at >= ? ORDER BY at", (user, since)
        ).fetchall()
        return [float(r[0]) for r in rows]

    async def list_methods(self, user: str) -> list[str]:
        rows = self._run(
            "SELECT method FROM enrolments WHERE user = ? ORDER BY method", (user,)
        ).fetchall()
        return [str(r[0]) for r in rows]

    async def enforced_since(self, company: str) -> float | None:
        row = self._run("SELECT since FROM enforcement WHERE company = ?", (company,)).fetchone()
        return None if row is None else float(row[0])

    async def enforce(self, company: str, at: float, source: str) -> bool:
        cur = self._run(
            "INSERT INTO enforcement (company, since, source) VALUES (?, ?, ?) "
            "ON CONFLICT(company) DO NOTHING",
            (company, at, source),
        )
        return cur.rowcount == 1

    async def lift_enforcement(self, company: str) -> bool:
        lifted = self._run("DELETE FROM enforcement WHERE company = ?", (company,)).rowcount == 1
        self._run("DELETE FROM enforcement WHERE source = ?", (MEMBER_OF + company,))
        return lifted

    async def enforced_companies(self) -> dict[str, float]:
        rows = self._run(
            "SELECT company, since FROM enforcement WHERE source NOT LIKE ?", (MEMBER_OF + "%",)
        ).fetchall()
        return {str(company): float(since) for company, since in rows}

    async def enforced_members(self) -> dict[str, tuple[str, float]]:
        rows = self._run(
            "SELECT company, source, since FROM enforcement WHERE source LIKE ?",
            (MEMBER_OF + "%",),
        ).fetchall()
        return {
            str(key): (str(source)[len(MEMBER_OF) :], float(since)) for key, source, since in rows
        }

    async def get_deferral(self, user: str) -> Deferral | None:
        row = self._run(
            "SELECT company, since, until FROM deferrals WHERE user = ?", (user,)
        ).fetchone()
        return None if row is None else Deferral(str(row[0]), float(row[1]), float(row[2]))

    async def put_deferral(self, user: str, company: str, since: float, until: float) -> None:
        self._run(
            "INSERT INTO deferrals (user, company, since, until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(user) DO UPDATE SET company = excluded.company, since = excluded.since, "
            "until = excluded.until",
            (user, company, since, until),
        )

    async def delete_deferral(self, user: str) -> bool:
        return self._run("DELETE FROM deferrals WHERE user = ?", (user,)).rowcount == 1

    async def list_deferrals(self, company: str) -> dict[str, float]:
        """User -> until, for a company's members who put off enrolment."""
        rows = self._run(
            "SELECT user, until FROM deferrals WHERE company = ? ORDER BY user", (company,)
        ).fetchall()
        return {str(user): float(until) for user, until in rows}

    async def claim_totp_step(self, user: str, step: int) -> bool:
        cur = self._run(
            "INSERT INTO totp_steps (user, step) VALUES (?, ?) "
            "ON CONFLICT(user) DO UPDATE SET step = excluded.step WHERE excluded.step > step",
            (user, step),
        )
        return cur.rowcount == 1

    async def last_totp_step(self, user: str) -> int | None:
        row = self._run("SELECT step FROM totp_steps WHERE user = ?", (user,)).fetchone()
        return None if row is None else int(row[0])

    async def note_user(
        self, user: str, company: str | None, at: float, facts: dict[str, Any]
    ) -> None:
        patch = json.dumps(facts)  # json_patch: a null removes the fact (RFC 7396)
        self._run(
            "INSERT INTO users (user, company, first_seen, facts) "
            "VALUES (?, ?, ?, json_patch('{}', ?)) ON CONFLICT(user) DO UPDATE SET "
            "company = excluded.company, facts = json_patch(users.facts, ?)",
            (user, company, at, patch, patch),
        )

    @staticmethod
    def _user(row: tuple[Any, ...]) -> UserRecord:
        user, company, first_seen, facts = row
        company = None if company is None else str(company)
        return UserRecord(str(user), company, float(first_seen), dict(json.loads(facts)))

    async def get_user(self, user: str) -> UserRecord | None:
        row = self._run(
            "SELECT user, company, first_seen, facts FROM users WHERE user = ?", (user,)
        ).fetchone()
        return None if row is None else self._user(row)

    async def list_users(self, company: str) -> list[UserRecord]:
        rows = self._run(
            "SELECT user, company, first_seen, facts FROM users WHERE company = ? ORDER BY user",
            (company,),
        ).fetchall()
        return [self._user(row) for row in rows]

    async def note_browser(self, user: str, browser: str, at: float, since: float) -> int:
        self._run(
            "INSERT INTO browsers (user, browser, at) VALUES (?, ?, ?) ON CONFLICT(user, browser) "
            "DO UPDATE SET at = MAX(browsers.at, excluded.at)",
            (user, browser, at),
        )
        self._run("DELETE FROM browsers WHERE user = ? AND at < ?", (user, since))
        return await self.browsers_since(user, since)

    async def browsers_since(self, user: str, since: float) -> int:
        row = self._run(
            "SELECT COUNT(*) FROM browsers WHERE user = ? AND at >= ?", (user, since)
        ).fetchone()
        return int(row[0])

    async def note_known_browser(self, user: str, browser: str, at: float) -> None:
        self._run(
            "INSERT INTO known_browsers (user, browser, at) VALUES (?, ?, ?) "
            "ON CONFLICT(user, browser) DO UPDATE SET at = MAX(known_browsers.at, excluded.at)",
            (user, browser, at),
        )
        self._run(
            "DELETE FROM known_browsers WHERE user = ? AND at < ?", (user, at - BROWSERS_KEPT)
        )

    async def knows_browser(self, user: str, browser: str, since: float) -> bool:
        row = self._run(
            "SELECT 1 FROM known_browsers WHERE user = ? AND browser = ? AND at >= ?",
            (user, browser, since),
        ).fetchone()
        return row is not None

    async def remember_browser(
        self, user: str, handle: str, record: dict[str, Any], until: float
    ) -> None:
        self._run(
            "INSERT INTO remembered (user, handle, record, until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(user, handle) DO UPDATE SET record = excluded.record, "
            "until = excluded.until",
            (user, handle, json.dumps(record), until),
        )

    async def remembered_browser(
        self, user: str, handle: str, now: float
    ) -> RememberedBrowser | None:
        row = self._run(
            "SELECT record, until FROM remembered WHERE user = ? AND handle = ? AND until > ?",
            (user, handle, now),
        ).fetchone()
        if row is None:
            return None
        return RememberedBrowser(handle, dict(json.loads(row[0])), float(row[1]))

    async def list_remembered(self, user: str, now: float) -> list[RememberedBrowser]:
        rows = self._run(
            "SELECT handle, record, until FROM remembered WHERE user = ? AND until > ? "
            "ORDER BY until, handle",
            (user, now),
        ).fetchall()
        return [RememberedBrowser(str(h), dict(json.loads(r)), float(u)) for h, r, u in rows]

    async def forget_browser(self, user: str, handle: str) -> bool:
        cur = self._run("DELETE FROM remembered WHERE user = ? AND handle = ?", (user, handle))
        return cur.rowcount == 1

    async def forget_browsers(self, user: str) -> int:
        return self._run("DELETE FROM remembered WHERE user = ?", (user,)).rowcount
