"""A RedisStore from its store URL: redis://[user:pass@]host:port[/db], rediss://... (TLS),
redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db], redis+cluster://[user:pass@]
host:port. Query arguments such as socket_timeout=2 and socket_connect_timeout=2 (the defaults)
tune the client; allow_volatile=yes skips the durability check (gateway.store.durability)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.clock import Clock
from gateway.store.durability import check_connection
from gateway.store.redis import Client, Connect, RedisStore

SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster", "rediss+cluster")
TIMEOUT = 2.0  # seconds: a dead Redis fails a request fast instead of hanging it


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
