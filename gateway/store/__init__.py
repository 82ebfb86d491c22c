"""State the gateway keeps: the interface and its backends, chosen by the store URL."""

from __future__ import annotations

from gateway.store.base import Deferral, Store, StoreUnavailable
from gateway.store.sqlite import SqliteStore, path_from_url


def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return SqliteStore(path_from_url(url))
    scheme = url.split(":", 1)[0]  # never the rest: it may hold a password
    raise StoreUnavailable(f"store URLs starting {scheme}: are not supported by this version")


__all__ = ["Deferral", "SqliteStore", "Store", "StoreUnavailable", "open_store"]
