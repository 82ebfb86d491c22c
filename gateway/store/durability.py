"""A Redis that would lose what the gateway gives it is refused when the store opens: without
AOF or RDB persistence a restart forgets every enrolment (and anyone with a user's password then
enrols their own authenticator); an eviction policy other than noeviction drops keys under
memory pressure. The check runs when the store opens and again on every new connection (a Redis
restarted, or failed over to a replica, with another configuration is refused from then on:
requests that need the store fail closed until it is fixed). `?allow_volatile=yes` in the store
URL runs anyway."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisClusterException, RedisError, ResponseError

from gateway.store.base import StoreUnavailable


async def check_durability(client: Any) -> None:
    """Raise StoreUnavailable, saying what to change, unless `client`'s Redis keeps its data."""
    try:
        config = await client.config_get("*")
    except (RedisError, RedisClusterException, OSError) as exc:
        raise StoreUnavailable(
            "cannot read the Redis configuration to check that it keeps its data "
            f"({type(exc).__name__}); check persistence (appendonly or save) and "
            "maxmemory-policy noeviction yourself, then add ?allow_volatile=yes to the "
            "store URL"
        ) from None
    problems = _problems(config)
    if problems:
        raise StoreUnavailable(_message(problems))


class VolatileRedis(ResponseError):
    """A connection reached a Redis that would lose the gateway's data (not retried: the
    command fails, and the store reports itself unavailable)."""


async def check_connection(connection: Any) -> None:
    """redis-py's redis_connect_func: the usual handshake, then the same check on the fresh
    connection, before any command of the gateway's uses it."""
    await connection.on_connect()
    config: dict[str, str] = {}
    try:
        for name in ("appendonly", "save", "maxmemory-policy"):
            await connection.send_command("CONFIG", "GET", name)
            reply = await connection.read_response()
            if isinstance(reply, dict):  # RESP3
                config.update({str(k): str(v) for k, v in reply.items()})
            else:
                config.update(zip(map(str, reply[::2]), map(str, reply[1::2]), strict=True))
    except (ResponseError, TypeError, ValueError) as exc:  # CONFIG refused, or an odd reply
        raise VolatileRedis(
            f"cannot read the Redis configuration to check that it keeps its data "
            f"({type(exc).__name__}); check persistence (appendonly or save) and "
            "maxmemory-policy noeviction yourself, then add ?allow_volatile=yes to the "
            "store URL"
        ) from None
    problems = _problems(config)
    if problems:
        raise VolatileRedis(_message(problems) + " (found on reconnecting)")


def _problems(config: dict[str, str]) -> list[str]:
    problems = []
    if config.get("appendonly") != "yes" and not (config.get("save") or "").strip():
        problems.append('it has no persistence (appendonly no, save "")')
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy {policy} evicts keys under memory pressure")
    return problems


def _message(problems: list[str]) -> str:
    return (
        "the Redis store would lose enrolments: "
        + "; ".join(problems)
        + ". Turn on appendonly (or save) and maxmemory-policy noeviction, or add "
        "?allow_volatile=yes to the store URL to run anyway (see SECURITY.md)"
    )
