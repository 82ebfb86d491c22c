"""A Redis that would lose what the gateway gives it is refused when the store opens: without
AOF or RDB persistence a restart forgets every enrolment (and anyone with a user's password then
enrols their own authenticator); an eviction policy other than noeviction drops keys under
memory pressure. `?allow_volatile=yes` in the store URL runs anyway."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisClusterException, RedisError

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
    problems = []
    if config.get("appendonly") != "yes" and not (config.get("save") or "").strip():
        problems.append('it has no persistence (appendonly no, save "")')
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy {policy} evicts keys under memory pressure")
    if problems:
        raise StoreUnavailable(
            "the Redis store would lose enrolments: "
            + "; ".join(problems)
            + ". Turn on appendonly (or save) and maxmemory-policy noeviction, or add "
            "?allow_volatile=yes to the store URL to run anyway (see SECURITY.md)"
        )
