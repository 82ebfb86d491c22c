"""Remembering the answers of small pure functions on the hot path, within a bound.

Requests repeat themselves: the same paths, header names and Cookie headers come again and
again, and the gateway's answer for each is a pure function of it. `remembered` keeps those
answers in a plain dict. It is bounded (cleared when full: cheaper than tracking use, and the
common keys come straight back) and keeps no key longer than `longest`, so a client sending
endless new or huge values costs memory only up to the bound. An exception is not remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remembered(
    entries: int,
    longest: int,
    size: Callable[[Any], int] = len,
    keep: Callable[[Any], bool] | None = None,
) -> Callable[[Callable[[K], V]], Callable[[K], V]]:
    """Decorate a one-argument pure function: at most `entries` answers kept, none for an
    argument whose `size` is over `longest`, nor an answer `keep` refuses (one much larger than
    its argument: what a client sends must not pin many times its size in memory)."""

    def decorate(function: Callable[[K], V]) -> Callable[[K], V]:
        memo: dict[K, V] = {}

        def call(key: K) -> V:
            try:
                return memo[key]
            except KeyError:
                pass
            value = function(key)
            if size(key) <= longest and (keep is None or keep(value)):
                if len(memo) >= entries:
                    memo.clear()
                memo[key] = value
            return value

        call.__doc__ = function.__doc__
        call.__wrapped__ = function  # type: ignore[attr-defined]
        return call

    return decorate
