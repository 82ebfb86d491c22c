"""The Redis store's Lua scripts and the keys they work on. Each script is one atomic step on one
key, or on keys that share a hash tag (`{user}`), so it stays atomic across gateway processes and
works on a Redis Cluster too; `tag()` names such a key, `ms()` spells a TTL and `member()` a
unique sorted-set member as the scripts take them."""

from __future__ import annotations

import math
import secrets

PREFIX = "gateway:"

# KEYS[1] sorted set; ARGV: score, member, prune below, ttl ms for the newest score.
ZADD_KEEP = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
# Sends of one user: ARGV at, member, hour ago, pause ago, per_hour, prune below, ttl ms.
RESERVE_SEND = """
if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf') >= tonumber(ARGV[5]) then return 0 end
if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf') > 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
local ttl = tonumber(ARGV[7])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
CLAIM_STEP = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
REPLACE_FIELD = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# KEYS: enrolments, totp step (one hash tag); the number of enrolments removed.
DELETE_ENROLMENTS = """
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return n
"""
# Enforcement rows are JSON [since, source]; ARGV: company, the source of its members' rows.
LIFT = """
local lifted = redis.call('HDEL', KEYS[1], ARGV[1])
local rows = redis.call('HGETALL', KEYS[1])
for i = 1, #rows, 2 do
  if cjson.decode(rows[i + 1])[2] == ARGV[2] then redis.call('HDEL', KEYS[1], rows[i]) end
end
return lifted
"""
# Replace a hash's fields and TTL at once; ARGV: ttl ms, then field, value pairs.
PUT_HASH = """
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
# A live code is removed and returned; an expired one is left to its TTL, as SQLite leaves it.
TAKE_CODE = """
local value = redis.call('GET', KEYS[1])
if not value or cjson.decode(value)['e'] <= tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
return value
"""
# Replace a session's fields only while it exists; ARGV: ttl ms, then field/value pairs.
UPDATE_HASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[1])
if ttl <= 0 then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
# A hold is "until|token". ARGV: token, now, until, ttl ms. Taken when absent or lapsed at `now`.
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and tonumber(string.match(held, '^([^|]*)')) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. ARGV[1], 'PX', ARGV[4])
return 1
"""
# Delete a hold only if it is still this token's.
RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '|(.*)$') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
DELETE_IF_USER = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
# Set a string with a TTL (or delete it when the TTL is gone); returns the value it replaced.
SWAP = """
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
NOTE_USER = """
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
NOTE_BROWSER = """
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('ZCARD', KEYS[1])
"""
# Remembered browsers of a user: a hash, handle -> JSON {"u": until, "r": record}. ARGV: handle,
# value, now, ttl ms. Lapsed entries are dropped; the hash lives as long as its latest entry.
# Already lapsed by the gateway's clock (no TTL left): not stored.
REMEMBER = """
local ttl = tonumber(ARGV[4])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local rows = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[3])
for i = 1, #rows, 2 do
  if cjson.decode(rows[i + 1])['u'] <= now then redis.call('HDEL', KEYS[1], rows[i]) end
end
if ttl > redis.call('PTTL', KEYS[1]) then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
# Remove every entry at once; how many there were.
FORGET_ALL = """
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"""


def tag(kind: str, name: str) -> str:
    """A key whose hash tag is `name`: keys of one user land in one cluster slot. Braces in
    the name are escaped, or a name such as "}x" would end the tag early."""
    escaped = name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"{PREFIX}{kind}:{{{escaped}}}"


def ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


def member(at: float) -> str:
    """A sorted-set member for an event at `at`: unique, so equal times count twice."""
    return f"{at!r}:{secrets.token_hex(4)}"
