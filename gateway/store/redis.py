"""The Redis backend: several gateway instances share one state, and Redis's TTLs expire it.
Atomic steps run as the Lua scripts of gateway.store.redis_scripts. Times come from the caller
(`now`, `at`, `expires_at`) as with SQLite; TTLs are those times minus the gateway's own clock,
and stored expiry times are still checked against `now`, so both backends agree under a fixed
clock. Every Redis error becomes StoreUnavailable, without the password. gateway.store.redis_url
makes the store from its URL.

Long (over 400 lines) because it is one class implementing the whole Store protocol, each
operation a few lines or one script call; the next split planned is by concern (sessions,
remembered browsers) into mixins, as the closing note of issue 18's first session says."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError

from gateway.clock import Clock
from gateway.store.base import (
    BROWSERS_KEPT,
    MEMBER_OF,
    Deferral,
    RememberedBrowser,
    StoredSession,
    StoreUnavailable,
    UserRecord,
)
from gateway.store.durability import check_durability
from gateway.store.redis_scripts import (
    ACQUIRE,
    CLAIM_STEP,
    DELETE_ENROLMENTS,
    DELETE_IF_USER,
    FORGET_ALL,
    LIFT,
    NOTE_BROWSER,
    NOTE_USER,
    PREFIX,
    PUT_HASH,
    RELEASE,
    REMEMBER,
    REPLACE_FIELD,
    RESERVE_SEND,
    SWAP,
    TAKE_CODE,
    UPDATE_HASH,
    ZADD_KEEP,
    member,
    ms,
    tag,
)

DAY = 86400.0

Client = Redis | RedisCluster
Connect = Callable[[], tuple[Client, list[Redis]]]


def _scores(rows: list[tuple[str, float]]) -> list[float]:
    return [float(score) for _member_, score in rows]


class RedisStore:
    def __init__(
        self,
        connect: Connect,
        clock: Clock,
        password: str | None = None,
        require_durable: bool = True,
    ) -> None:
        """`connect()` makes the client (and the clients to close with it); `password` is
        scrubbed from error messages; `require_durable`: refuse a Redis that would lose
        enrolments (see durability())."""
        self._connect = connect
        self.require_durable = require_durable
        self.clock = clock
        self._password = password
        self._client: Client | None = None
        self._also_close: list[Redis] = []  # a Sentinel's own connections
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def client(self) -> Client:
        if self._client is None:
            raise StoreUnavailable("the Redis store is not open")
        return self._client

    def _fail(self, exc: Exception) -> StoreUnavailable:
        message = f"Redis store error: {type(exc).__name__}: {exc}"
        if self._password:
            message = message.replace(self._password, "***")
        return StoreUnavailable(message)

    async def _do(self, awaitable: Awaitable[Any] | Any) -> Any:
        try:
            return await awaitable
        except (RedisError, RedisClusterException, OSError) as exc:
            raise self._fail(exc) from None

    async def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = self.client.register_script(script)
        return await self._do(registered(keys=keys, args=args))

    def _ttl(self, until: float) -> int:
        return ms(until - self.clock())

    async def open(self) -> None:
        try:
            self._client, self._also_close = self._connect()
        except (RedisError, ValueError) as exc:
            raise self._fail(exc) from None
        try:
            await self.ping()
            if self.require_durable:
                await self.durability()
        except StoreUnavailable:
            await self.close()
            raise

    async def durability(self) -> None:
        """Refuse a Redis that would lose what it is given (gateway.store.durability)."""
        await check_durability(self.client)

    async def close(self) -> None:
        if self._client is not None:
            clients, self._client = [self._client, *self._also_close], None
            self._scripts.clear()
            for client in clients:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()

    async def ping(self) -> None:
        await self._do(self.client.ping())

    # sessions: a hash (user, blob, exp) per session; a sorted set of session keys per user

    async def get_session(self, key: str, now: float) -> str | None:
        blob, exp = await self._do(self.client.hmget(tag("session", key), ["blob", "exp"]))
        if blob is None or exp is None or float(exp) <= now:
            return None
        return str(blob)

    async def put_session(self, key: str, user: str | None, blob: str, expires_at: float) -> None:
        ttl = self._ttl(expires_at)
        if user is not None:  # indexed first: a session is never stored unknown to its user
            await self._eval(
                ZADD_KEEP,
                [tag("user-sessions", user)],
                [repr(expires_at), key, repr(self.clock()), ttl],
            )
        fields: list[str] = ["blob", blob, "exp", repr(expires_at)]
        if user is not None:
            fields += ["user", user]
        await self._eval(PUT_HASH, [tag("session", key)], [ttl, *fields])

    async def update_session(
        self, key: str, user: str | None, blob: str, expires_at: float
    ) -> bool:
        ttl = self._ttl(expires_at)
        fields: list[str] = ["blob", blob, "exp", repr(expires_at)]
        if user is not None:
            fields += ["user", user]
            await self._eval(
                ZADD_KEEP,
                [tag("user-sessions", user)],
                [repr(expires_at), key, repr(self.clock()), ttl],
            )
        return bool(await self._eval(UPDATE_HASH, [tag("session", key)], [ttl, *fields]))

    async def delete_session(self, key: str) -> bool:
        return bool(await self._do(self.client.delete(tag("session", key))))

    async def delete_user_sessions(self, user: str) -> int:
        index = tag("user-sessions", user)
        keys = cast(list[str], await self._do(self.client.zrange(index, 0, -1)))
        deleted = 0
        for key in keys:
            deleted += int(await self._eval(DELETE_IF_USER, [tag("session", key)], [user]))
        if keys:
            await self._do(self.client.zrem(index, *keys))
        return deleted

    async def list_user_sessions(self, user: str, now: float) -> list[StoredSession]:
        """The index names every session the user was given (until its TTL); each is read on
        its own (a cluster keeps sessions in their own slots) and counts only while it lives
        and is still the user's."""
        index = tag("user-sessions", user)
        keys = cast(list[str], await self._do(self.client.zrange(index, 0, -1)))
        found = []
        for key in sorted(str(key) for key in keys):
            fields = ["blob", "exp", "user"]
            blob, exp, owner = await self._do(self.client.hmget(tag("session", key), fields))
            if blob is None or exp is None or owner != user or float(exp) <= now:
                continue
            found.append(StoredSession(key, str(blob), float(exp)))
        return found

    async def purge_expired(self, now: float) -> int:
        return 0  # Redis expires keys by their TTLs

    # enrolments: a hash per user, method -> JSON; the last TOTP step beside it (same hash tag)

    async def get_enrolment(self, user: str, method: str) -> dict[str, Any] | None:
        data = await self._do(self.client.hget(tag("enrolments", user), method))
        return None if data is None else dict(json.loads(data))

    async def put_enrolment(self, user: str, method: str, data: dict[str, Any]) -> None:
        await self._do(self.client.hset(tag("enrolments", user), method, json.dumps(data)))

    async def delete_enrolments(self, user: str) -> int:
        keys = [tag("enrolments", user), tag("totp-step", user)]
        return int(await self._eval(DELETE_ENROLMENTS, keys, []))

    async def delete_enrolment(self, user: str, method: str) -> bool:
        return int(await self._do(self.client.hdel(tag("enrolments", user), method))) == 1

    async def replace_enrolment(
        self, user: str, method: str, old: dict[str, Any], new: dict[str, Any]
    ) -> bool:
        args = [method, json.dumps(old), json.dumps(new)]
        return int(await self._eval(REPLACE_FIELD, [tag("enrolments", user)], args)) == 1

    async def list_methods(self, user: str) -> list[str]:
        methods = await self._do(self.client.hkeys(tag("enrolments", user)))
        return sorted(str(method) for method in methods)

    # the enforcement ratchet: one hash, company or member key -> JSON [since, source]

    async def _enforcement(self) -> dict[str, tuple[float, str]]:
        rows = await self._do(self.client.hgetall(PREFIX + "enforcement"))
        decoded = {str(key): json.loads(value) for key, value in rows.items()}
        return {key: (float(since), str(source)) for key, (since, source) in decoded.items()}

    async def enforced_since(self, company: str) -> float | None:
        row = await self._do(self.client.hget(PREFIX + "enforcement", company))
        return None if row is None else float(json.loads(row)[0])

    async def enforce(self, company: str, at: float, source: str) -> bool:
        row = json.dumps([at, source])
        return bool(await self._do(self.client.hsetnx(PREFIX + "enforcement", company, row)))

    async def lift_enforcement(self, company: str) -> bool:
        args = [company, MEMBER_OF + company]
        return int(await self._eval(LIFT, [PREFIX + "enforcement"], args)) == 1

    async def enforced_companies(self) -> dict[str, float]:
        rows = await self._enforcement()
        return {
            key: since for key, (since, source) in rows.items() if not source.startswith(MEMBER_OF)
        }

    async def enforced_members(self) -> dict[str, tuple[str, float]]:
        rows = await self._enforcement()
        return {
            key: (source[len(MEMBER_OF) :], since)
            for key, (since, source) in rows.items()
            if source.startswith(MEMBER_OF)
        }

    # deferrals: JSON per user until its `until`; a sorted set of users (by until) per company

    async def get_deferral(self, user: str) -> Deferral | None:
        data = await self._do(self.client.get(tag("deferral", user)))
        if data is None:
            return None
        row = json.loads(data)
        return Deferral(str(row["company"]), float(row["since"]), float(row["until"]))

    async def put_deferral(self, user: str, company: str, since: float, until: float) -> None:
        ttl = self._ttl(until)
        await self._eval(
            ZADD_KEEP, [tag("deferrals", company)], [repr(until), user, repr(self.clock()), ttl]
        )
        row = json.dumps({"company": company, "since": since, "until": until})
        old = await self._eval(SWAP, [tag("deferral", user)], [row, ttl])
        if old is not None and json.loads(old)["company"] != company:
            await self._do(self.client.zrem(tag("deferrals", json.loads(old)["company"]), user))

    async def delete_deferral(self, user: str) -> bool:
        old = await self._eval(SWAP, [tag("deferral", user)], ["", 0])
        if old is None:
            return False
        await self._do(self.client.zrem(tag("deferrals", json.loads(old)["company"]), user))
        return True

    async def list_deferrals(self, company: str) -> dict[str, float]:
        """User -> until, for a company's members whose deferral has not run out."""
        index = await self._do(self.client.zrange(tag("deferrals", company), 0, -1))
        found: dict[str, float] = {}
        for user in sorted(str(user) for user in index):
            deferral = await self.get_deferral(user)
            if deferral is not None and deferral.company == company:
                found[user] = deferral.until
        return found

    # one-time codes: JSON {"e": expires_at, "d": data} until they expire

    async def put_code(self, key: str, data: dict[str, Any], expires_at: float) -> None:
        value = json.dumps({"e": expires_at, "d": data})
        await self._eval(SWAP, [tag("code", key)], [value, self._ttl(expires_at)])

    @staticmethod
    def _live_code(value: str | None, now: float) -> dict[str, Any] | None:
        if value is None:
            return None
        row = json.loads(value)
        return dict(row["d"]) if float(row["e"]) > now else None

    async def get_code(self, key: str, now: float) -> dict[str, Any] | None:
        return self._live_code(await self._do(self.client.get(tag("code", key))), now)

    async def take_code(self, key: str, now: float) -> dict[str, Any] | None:
        return self._live_code(await self._eval(TAKE_CODE, [tag("code", key)], [repr(now)]), now)

    async def delete_code(self, key: str) -> None:
        await self._do(self.client.delete(tag("code", key)))

    # failures and sends: sorted sets of times, each kept a day after its latest entry

    async def record_failure(self, key: str, at: float) -> None:
        args = [repr(at), member(at), repr(at - DAY), self._ttl(at + DAY)]
        await self._eval(ZADD_KEEP, [tag("failures", key)], args)

    async def _times_since(self, key: str, since: float) -> list[float]:
        rows = await self._do(self.client.zrangebyscore(key, since, "+inf", withscores=True))
        return _scores(rows)

    async def failures_since(self, key: str, since: float) -> list[float]:
        return await self._times_since(tag("failures", key), since)

    async def clear_failures(self, key: str) -> None:
        await self._do(self.client.delete(tag("failures", key)))

    # a list of failure keys: a sorted set of keys by their latest failure, as NOTE_BROWSER keeps

    async def note_failure_key(self, name: str, key: str, at: float) -> None:
        args = [repr(at), key, repr(at - DAY), self._ttl(at + DAY)]
        await self._eval(NOTE_BROWSER, [tag("failure-keys", name)], args)

    async def failure_keys(self, name: str, since: float) -> list[str]:
        found = await self._do(self.client.zrangebyscore(tag("failure-keys", name), since, "+inf"))
        return sorted(str(key) for key in found)

    async def reserve_send(self, user: str, at: float, pause: float, per_hour: int) -> bool:
        args = [
            repr(at),
            member(at),
            repr(at - 3600),
            repr(at - pause),
            per_hour,
            repr(at - DAY),
            self._ttl(at + DAY),
        ]
        return int(await self._eval(RESERVE_SEND, [tag("sends", user)], args)) == 1

    async def acquire(self, name: str, token: str, now: float, ttl: float) -> bool:
        args = [token, repr(now), repr(now + ttl), max(1, ms(ttl))]
        return bool(await self._eval(ACQUIRE, [tag("hold", name)], args))

    async def release(self, name: str, token: str) -> None:
        await self._eval(RELEASE, [tag("hold", name)], [token])

    async def release_send(self, user: str, at: float) -> None:
        await self._do(self.client.zremrangebyscore(tag("sends", user), at, at))

    async def sends_since(self, user: str, since: float) -> list[float]:
        return await self._times_since(tag("sends", user), since)

    # TOTP replay protection

    async def claim_totp_step(self, user: str, step: int) -> bool:
        return int(await self._eval(CLAIM_STEP, [tag("totp-step", user)], [step])) == 1

    async def last_totp_step(self, user: str) -> int | None:
        step = await self._do(self.client.get(tag("totp-step", user)))
        return None if step is None else int(step)

    # users seen: a hash per user (no TTL), a set of user names per company (an index that may
    # keep users who moved on: a record counts for the company it names)

    async def note_user(
        self, user: str, company: str | None, at: float, facts: dict[str, Any]
    ) -> None:
        if company is not None:  # indexed first: a record is never unknown to its company
            await self._do(self.client.sadd(tag("company-users", company), user))
        sets = [(name, json.dumps(value)) for name, value in facts.items() if value is not None]
        removes = [name for name, value in facts.items() if value is None]
        args: list[Any] = [repr(at), company or "", len(sets)]
        for name, value in sets:
            args += [name, value]
        await self._eval(NOTE_USER, [tag("user", user)], args + removes)

    async def get_user(self, user: str) -> UserRecord | None:
        row = await self._do(self.client.hgetall(tag("user", user)))
        if not row or "_first_seen" not in row:
            return None
        facts = {
            str(name): json.loads(value) for name, value in row.items() if not name.startswith("_")
        }
        company = row.get("_company")
        return UserRecord(user, str(company) if company else None, float(row["_first_seen"]), facts)

    async def list_users(self, company: str) -> list[UserRecord]:
        names = await self._do(self.client.smembers(tag("company-users", company)))
        found = []
        for name in sorted(str(name) for name in names):
            record = await self.get_user(name)
            if record is not None and record.company == company:
                found.append(record)
        return found

    async def note_browser(self, user: str, browser: str, at: float, since: float) -> int:
        ttl = self._ttl(at + min(at - since, BROWSERS_KEPT))
        keep_from = max(since, at - BROWSERS_KEPT)
        args = [repr(at), browser, repr(keep_from), ttl]
        return int(await self._eval(NOTE_BROWSER, [tag("browsers", user)], args))

    async def browsers_since(self, user: str, since: float) -> int:
        return int(await self._do(self.client.zcount(tag("browsers", user), since, "+inf")))

    # browsers that got the user's password right: another sorted set by last sighting

    async def note_known_browser(self, user: str, browser: str, at: float) -> None:
        args = [repr(at), browser, repr(at - BROWSERS_KEPT), self._ttl(at + BROWSERS_KEPT)]
        await self._eval(NOTE_BROWSER, [tag("known-browsers", user)], args)

    async def knows_browser(self, user: str, browser: str, since: float) -> bool:
        at = await self._do(self.client.zscore(tag("known-browsers", user), browser))
        return at is not None and float(at) >= since

    # remembered browsers: a hash per user, handle -> JSON {"u": until, "r": record}, living as
    # long as its latest entry (REMEMBER); entries are checked against `now` when read

    async def remember_browser(
        self, user: str, handle: str, record: dict[str, Any], until: float
    ) -> None:
        value = json.dumps({"u": until, "r": record})
        args = [handle, value, repr(self.clock()), self._ttl(until)]
        await self._eval(REMEMBER, [tag("remembered", user)], args)

    @staticmethod
    def _remembered(handle: str, value: str, now: float) -> RememberedBrowser | None:
        row = json.loads(value)
        if float(row["u"]) <= now:
            return None
        return RememberedBrowser(handle, dict(row["r"]), float(row["u"]))

    async def remembered_browser(
        self, user: str, handle: str, now: float
    ) -> RememberedBrowser | None:
        value = await self._do(self.client.hget(tag("remembered", user), handle))
        return None if value is None else self._remembered(handle, str(value), now)

    async def list_remembered(self, user: str, now: float) -> list[RememberedBrowser]:
        rows = await self._do(self.client.hgetall(tag("remembered", user)))
        found = [self._remembered(str(h), str(v), now) for h, v in rows.items()]
        return sorted((r for r in found if r is not None), key=lambda r: (r.until, r.handle))

    async def forget_browser(self, user: str, handle: str) -> bool:
        return int(await self._do(self.client.hdel(tag("remembered", user), handle))) == 1

    async def forget_browsers(self, user: str) -> int:
        return int(await self._eval(FORGET_ALL, [tag("remembered", user)], []))
