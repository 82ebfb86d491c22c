"""State the gateway keeps: the interface and its backends, chosen by the store URL."""

from __future__ import annotations

from gateway.clock import Clock, system_clock
from gateway.store.base import Deferral, Store, StoreUnavailable
from gateway.store.sqlite import SqliteStore, path_from_url


def open_store(url: str, clock: Clock = system_clock) -> Store:
    """The store for `url` (not yet open). `clock` is the gateway's: Redis TTLs are the times
    the gateway passes in minus its clock's now."""
    if url.startswith("sqlite:///"):
        return SqliteStore(path_from_url(url))
    scheme = url.split(":", 1)[0]  # never the rest: it may hold a password
    from gateway.store.redis_url import SCHEMES, redis_store  # the client is loaded only when used

    if scheme in SCHEMES:
        try:
            return redis_store(url, clock)
        except ValueError as exc:
            raise StoreUnavailable(f"the {scheme}: store URL is malformed: {exc}") from None
    raise StoreUnavailable(f"store URLs starting {scheme}: are not supported by this version")


__all__ = ["Deferral", "SqliteStore", "Store", "StoreUnavailable", "open_store"]
