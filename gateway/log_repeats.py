"""One log line for a burst of the same failure: the first occurrence is logged, the next ones
within `interval` seconds only counted, and the count logged with the next occurrence after it
(issue 15: with the store down, one ERROR line per failed request, about 1,900 a second)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Repeats:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._last: dict[str, float] = {}  # key -> when it was last logged
        self._held: dict[str, int] = {}  # key -> occurrences not logged since

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log `message` unless the same `key` was logged less than `interval` ago."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        if len(self._last) > 1024:  # keys are few (a store, upstream origins); stay bounded
            oldest = min(self._last, key=self._last.__getitem__)
            self._last.pop(oldest)
            self._held.pop(oldest, None)
        if held:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, held, now - (last or now))
        self.logger.log(level, message, *args)
