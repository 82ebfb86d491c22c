"""The Redis backend: several gateway instances share one state, and Redis's TTLs expire it.

Atomic steps run as Lua scripts on one key, or on keys that share a hash tag (`{user}`), so they
stay atomic across gateway processes and work on a Redis Cluster too. Times come from the caller
(`now`, `at`, `expires_at`) as with SQLite; TTLs are those times minus the gateway's own clock,
and stored expiry times are still checked against `now`, so both backends agree under a fixed
clock. Every Redis error becomes StoreUnavailable, without the password.

URLs: redis://[user:pass@]host:port[/db], rediss://... (TLS), redis+sentinel://[user:pass@]
host:port[,host:port...]/service[/db], redis+cluster://[user:pass@]host:port. Query arguments
such as socket_timeout=2 and socket_connect_timeout=2 (the defaults) tune the client.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from gateway.clock import Clock
from gateway.store.base import BROWSERS_KEPT, MEMBER_OF, Deferral, StoreUnavailable, UserRecord
from gateway.store.durability import check_connection, check_durability

SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster", "rediss+cluster")
TIMEOUT = 2.0  # seconds: a dead Redis fails a request fast instead of hanging it
DAY = 86400.0
PREFIX = "gateway:"

Client = Redis | RedisCluster
Connect = Callable[[], tuple[Client, list[Redis]]]

# KEYS[1] sorted set; ARGV: score, member, prune below, ttl ms for the newest score.
_ZADD_KEEP = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
# Sends of one user: ARGV at, member, hour ago, pause ago, per_hour, prune below, ttl ms.
_RESERVE_SEND = """
if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf') >= tonumber(ARGV[5]) then return 0 end
if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf') > 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
local ttl = tonumber(ARGV[7])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
_CLAIM_STEP = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
_REPLACE_FIELD = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# KEYS: enrolments, totp step (one hash tag); the number of enrolments removed.
_DELETE_ENROLMENTS = """
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return n
"""
# Enforcement rows are JSON [since, source]; ARGV: company, the source of its members' rows.
_LIFT = """
local lifted = redis.call('HDEL', KEYS[1], ARGV[1])
local rows = redis.call('HGETALL', KEYS[1])
for i = 1, #rows, 2 do
  if cjson.decode(rows[i + 1])[2] == ARGV[2] then redis.call('HDEL', KEYS[1], rows[i]) end
end
return lifted
"""
# Replace a hash's fields and TTL at once; ARGV: ttl ms, then field, value pairs.
_PUT_HASH = """
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
# A live code is removed and returned; an expired one is left to its TTL, as SQLite leaves it.
_TAKE_CODE = """
local value = redis.call('GET', KEYS[1])
if not value or cjson.decode(value)['e'] <= tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
return value
"""
# Replace a session's fields only while it exists; ARGV: ttl ms, then field/value pairs.
_UPDATE_HASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[1])
if ttl <= 0 then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
# A hold is "until|token". ARGV: token, now, until, ttl ms. Taken when absent or lapsed at `now`.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(string.match(held, '^([^|]*)')) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. ARGV[1], 'PX', ARGV[4])
return 1
"""
# Delete a hold only if it is still this token's.
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '|(.*)$') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DELETE_IF_USER = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
# Set a string with a TTL (or delete it when the TTL is gone); returns the value it replaced.
_SWAP = """
local old = redis.call('GET', KEYS[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return old
"""

# A user's record: a hash of "_first_seen", "_company" and JSON facts. ARGV: first_seen,
# company ('' for none), the number n of facts to set, n field/value pairs, facts to remove.
_NOTE_USER = """
redis.call('HSETNX', KEYS[1], '_first_seen', ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], '_company')
else
  redis.call('HSET', KEYS[1], '_company', ARGV[2])
end
local n = tonumber(ARGV[3])
for i = 4, 3 + 2 * n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return 1
"""
# Browsers of a user, scored by when last seen; ARGV: at, browser, since, ttl ms. How many left.
_NOTE_BROWSER = """
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('ZCARD', KEYS[1])
"""


def _tag(kind: str, name: str) -> str:
    """A key whose hash tag is `name`: keys of one user land in one cluster slot. Braces in
    the name are escaped, or a name such as "}x" would end the tag early."""
    escaped = name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"{PREFIX}{kind}:{{{escaped}}}"


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


def _member(at: float) -> str:
    """A sorted-set member for an event at `at`: unique, so equal times count twice."""
    return f"{at!r}:{secrets.token_hex(4)}"


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
        return _ms(until - self.clock())

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
        blob, exp = await self._do(self.client.hmget(_tag("session", key), ["blob", "exp"]))
        if blob is None or exp is None or float(exp) <= now:
            return None
        return str(blob)

    async def put_session(self, key: str, user: str | None, blob: str, expires_at: float) -> None:
        ttl = self._ttl(expires_at)
        if user is not None:  # indexed first: a session is never stored unknown to its user
            await self._eval(
                _ZADD_KEEP,
                [_tag("user-sessions", user)],
                [repr(expires_at), key, repr(self.clock()), ttl],
            )
        fields: list[str] = ["blob", blob, "exp", repr(expires_at)]
        if user is not None:
            fields += ["user", user]
        await self._eval(_PUT_HASH, [_tag("session", key)], [ttl, *fields])

    async def update_session(
        self, key: str, user: str | None, blob: str, expires_at: float
    ) -> bool:
        ttl = self._ttl(expires_at)
        fields: list[str] = ["blob", blob, "exp", repr(expires_at)]
        if user is not None:
            fields += ["user", user]
            await self._eval(
                _ZADD_KEEP,
                [_tag("user-sessions", user)],
                [repr(expires_at), key, repr(self.clock()), ttl],
            )
        return bool(await self._eval(_UPDATE_HASH, [_tag("session", key)], [ttl, *fields]))

    async def delete_session(self, key: str) -> bool:
        return bool(await self._do(self.client.delete(_tag("session", key))))

    async def delete_user_sessions(self, user: str) -> int:
        index = _tag("user-sessions", user)
        keys = cast(list[str], await self._do(self.client.zrange(index, 0, -1)))
        deleted = 0
        for key in keys:
            deleted += int(await self._eval(_DELETE_IF_USER, [_tag("session", key)], [user]))
        if keys:
            await self._do(self.client.zrem(index, *keys))
        return deleted

    async def purge_expired(self, now: float) -> int:
        return 0  # Redis expires keys by their TTLs

    # enrolments: a hash per user, method -> JSON; the last TOTP step beside it (same hash tag)

    async def get_enrolment(self, user: str, method: str) -> dict[str, Any] | None:
        data = await self._do(self.client.hget(_tag("enrolments", user), method))
        return None if data is None else dict(json.loads(data))

    async def put_enrolment(self, user: str, method: str, data: dict[str, Any]) -> None:
        await self._do(self.client.hset(_tag("enrolments", user), method, json.dumps(data)))

    async def delete_enrolments(self, user: str) -> int:
        keys = [_tag("enrolments", user), _tag("totp-step", user)]
        return int(await self._eval(_DELETE_ENROLMENTS, keys, []))

    async def delete_enrolment(self, user: str, method: str) -> bool:
        return int(await self._do(self.client.hdel(_tag("enrolments", user), method))) == 1

    async def replace_enrolment(
        self, user: str, method: str, old: dict[str, Any], new: dict[str, Any]
    ) -> bool:
        args = [method, json.dumps(old), json.dumps(new)]
        return int(await self._eval(_REPLACE_FIELD, [_tag("enrolments", user)], args)) == 1

    async def list_methods(self, user: str) -> list[str]:
        methods = await self._do(self.client.hkeys(_tag("enrolments", user)))
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
        return int(await self._eval(_LIFT, [PREFIX + "enforcement"], args)) == 1

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
        data = await self._do(self.client.get(_tag("deferral", user)))
        if data is None:
            return None
        row = json.loads(data)
        return Deferral(str(row["company"]), float(row["since"]), float(row["until"]))

    async def put_deferral(self, user: str, company: str, since: float, until: float) -> None:
        ttl = self._ttl(until)
        await self._eval(
            _ZADD_KEEP, [_tag("deferrals", company)], [repr(until), user, repr(self.clock()), ttl]
        )
        row = json.dumps({"company": company, "since": since, "until": until})
        old = await self._eval(_SWAP, [_tag("deferral", user)], [row, ttl])
        if old is not None and json.loads(old)["company"] != company:
            await self._do(self.client.zrem(_tag("deferrals", json.loads(old)["company"]), user))

    async def delete_deferral(self, user: str) -> bool:
        old = await self._eval(_SWAP, [_tag("deferral", user)], ["", 0])
        if old is None:
            return False
        await self._do(self.client.zrem(_tag("deferrals", json.loads(old)["company"]), user))
        return True

    async def list_deferrals(self, company: str) -> dict[str, float]:
        """User -> until, for a company's members whose deferral has not run out."""
        index = await self._do(self.client.zrange(_tag("deferrals", company), 0, -1))
        found: dict[str, float] = {}
        for user in sorted(str(user) for user in index):
            deferral = await self.get_deferral(user)
            if deferral is not None and deferral.company == company:
                found[user] = deferral.until
        return found

    # one-time codes: JSON {"e": expires_at, "d": data} until they expire

    async def put_code(self, key: str, data: dict[str, Any], expires_at: float) -> None:
        value = json.dumps({"e": expires_at, "d": data})
        await self._eval(_SWAP, [_tag("code", key)], [value, self._ttl(expires_at)])

    @staticmethod
    def _live_code(value: str | None, now: float) -> dict[str, Any] | None:
        if value is None:
            return None
        row = json.loads(value)
        return dict(row["d"]) if float(row["e"]) > now else None

    async def get_code(self, key: str, now: float) -> dict[str, Any] | None:
        return self._live_code(await self._do(self.client.get(_tag("code", key))), now)

    async def take_code(self, key: str, now: float) -> dict[str, Any] | None:
        return self._live_code(await self._eval(_TAKE_CODE, [_tag("code", key)], [repr(now)]), now)

    async def delete_code(self, key: str) -> None:
        await self._do(self.client.delete(_tag("code", key)))

    # failures and sends: sorted sets of times, each kept a day after its latest entry

    async def record_failure(self, key: str, at: float) -> None:
        args = [repr(at), _member(at), repr(at - DAY), self._ttl(at + DAY)]
        await self._eval(_ZADD_KEEP, [_tag("failures", key)], args)

    async def _times_since(self, key: str, since: float) -> list[float]:
        rows = await self._do(self.client.zrangebyscore(key, since, "+inf", withscores=True))
        return _scores(rows)

    async def failures_since(self, key: str, since: float) -> list[float]:
        return await self._times_since(_tag("failures", key), since)

    async def clear_failures(self, key: str) -> None:
        await self._do(self.client.delete(_tag("failures", key)))

    async def reserve_send(self, user: str, at: float, pause: float, per_hour: int) -> bool:
        args = [
            repr(at),
            _member(at),
            repr(at - 3600),
            repr(at - pause),
            per_hour,
            repr(at - DAY),
            self._ttl(at + DAY),
        ]
        return int(await self._eval(_RESERVE_SEND, [_tag("sends", user)], args)) == 1

    async def acquire(self, name: str, token: str, now: float, ttl: float) -> bool:
        args = [token, repr(now), repr(now + ttl), max(1, _ms(ttl))]
        return bool(await self._eval(_ACQUIRE, [_tag("hold", name)], args))

    async def release(self, name: str, token: str) -> None:
        await self._eval(_RELEASE, [_tag("hold", name)], [token])

    async def release_send(self, user: str, at: float) -> None:
        await self._do(self.client.zremrangebyscore(_tag("sends", user), at, at))

    async def sends_since(self, user: str, since: float) -> list[float]:
        return await self._times_since(_tag("sends", user), since)

    # TOTP replay protection

    async def claim_totp_step(self, user: str, step: int) -> bool:
        return int(await self._eval(_CLAIM_STEP, [_tag("totp-step", user)], [step])) == 1

    async def last_totp_step(self, user: str) -> int | None:
        step = await self._do(self.client.get(_tag("totp-step", user)))
        return None if step is None else int(step)

    # users seen: a hash per user (no TTL), a set of user names per company (an index that may
    # keep users who moved on: a record counts for the company it names)

    async def note_user(
        self, user: str, company: str | None, at: float, facts: dict[str, Any]
    ) -> None:
        if company is not None:  # indexed first: a record is never unknown to its company
            await self._do(self.client.sadd(_tag("company-users", company), user))
        sets = [(name, json.dumps(value)) for name, value in facts.items() if value is not None]
        removes = [name for name, value in facts.items() if value is None]
        args: list[Any] = [repr(at), company or "", len(sets)]
        for name, value in sets:
            args += [name, value]
        await self._eval(_NOTE_USER, [_tag("user", user)], args + removes)

    async def get_user(self, user: str) -> UserRecord | None:
        row = await self._do(self.client.hgetall(_tag("user", user)))
        if not row or "_first_seen" not in row:
            return None
        facts = {
            str(name): json.loads(value) for name, value in row.items() if not name.startswith("_")
        }
        company = row.get("_company")
        return UserRecord(user, str(company) if company else None, float(row["_first_seen"]), facts)

    async def list_users(self, company: str) -> list[UserRecord]:
        names = await self._do(self.client.smembers(_tag("company-users", company)))
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
        return int(await self._eval(_NOTE_BROWSER, [_tag("browsers", user)], args))

    async def browsers_since(self, user: str, since: float) -> int:
        return int(await self._do(self.client.zcount(_tag("browsers", user), since, "+inf")))

    # browsers that got the user's password right: another sorted set by last sighting

    async def note_known_browser(self, user: str, browser: str, at: float) -> None:
        args = [repr(at), browser, repr(at - BROWSERS_KEPT), self._ttl(at + BROWSERS_KEPT)]
        await self._eval(_NOTE_BROWSER, [_tag("known-browsers", user)], args)

    async def knows_browser(self, user: str, browser: str, since: float) -> bool:
        at = await self._do(self.client.zscore(_tag("known-browsers", user), browser))
        return at is not None and float(at) >= since


# --- URLs ----------------------------------------------------------------------------------------


def _options(query: str) -> dict[str, Any]:
    """Client options from the URL's query: timeouts (seconds) and the sentinels' password."""
    known: dict[str, Callable[[str], Any]] = {
        "socket_timeout": float,
        "socket_connect_timeout": float,
        "sentinel_password": str,
        "allow_volatile": _yes,
    }
    options: dict[str, Any] = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    for name, values in parse_qs(query).items():
        if name not in known:
            raise ValueError(f"unknown Redis URL option {name!r}")
        options[name] = known[name](values[-1])
    return options


def _yes(value: str) -> bool:
    if value.lower() not in ("yes", "no"):
        raise ValueError(f"allow_volatile must be yes or no, not {value!r}")
    return value.lower() == "yes"


def _common(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "decode_responses": True,
        # a connection found dead (Redis restarted) is replaced once, at once; no backoff
        "retry": Retry(NoBackoff(), 1, (RedisConnectionError,)),
    }


def _hosts(netloc: str) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.rpartition(":")
        hosts.append((host.strip("[]"), int(port) if port else 26379))
    return hosts


def _connector(url: str) -> tuple[Connect, str | None]:
    """A function that makes the client for `url`, and the URL's password."""
    parts = urlsplit(url)
    scheme = parts.scheme
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    options = _options(parts.query)
    common = _common(options)
    # every new connection to a single Redis or a Sentinel's primary is checked again
    # (RedisCluster takes no redis_connect_func: a cluster is checked when the store opens)
    checked: dict[str, Any] = {}
    if not options.get("allow_volatile"):
        checked["redis_connect_func"] = check_connection
    if scheme == "redis+sentinel":
        path = [piece for piece in parts.path.split("/") if piece]
        if not path or len(path) > 2:
            raise ValueError("a Sentinel URL names its service: redis+sentinel://host:port/name")
        service, db = path[0], int(path[1]) if len(path) > 1 else 0
        hosts = _hosts(parts.netloc)
        watch = {key: common[key] for key in ("socket_timeout", "socket_connect_timeout")}
        if "sentinel_password" in options:
            watch["password"] = options["sentinel_password"]

        def sentinel() -> tuple[Client, list[Redis]]:
            sentinels = cast(Any, Sentinel)(  # untyped in redis-py
                hosts,
                sentinel_kwargs=watch,
                username=username,
                password=password,
                db=db,
                **common,
                **checked,
            )
            return cast(Redis, sentinels.master_for(service)), list(sentinels.sentinels)

        return sentinel, password
    if "sentinel_password" in options:
        raise ValueError("sentinel_password is for redis+sentinel:// URLs")
    base = url.split("?", 1)[0]
    if scheme.endswith("+cluster"):
        plain = scheme.replace("+cluster", "") + base[len(scheme) :]
        return lambda: (RedisCluster.from_url(plain, **common), []), password
    return lambda: (Redis.from_url(base, **common, **checked), []), password


def redis_store(url: str, clock: Clock) -> RedisStore:
    """A RedisStore for `url` (not yet open); ValueError for a malformed URL."""
    connect, password = _connector(url)
    volatile = bool(_options(urlsplit(url).query).get("allow_volatile", False))
    return RedisStore(connect, clock, password, require_durable=not volatile)
