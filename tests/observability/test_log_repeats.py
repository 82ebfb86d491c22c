"""A failure that repeats is logged once per burst with a count (issue 15, item 9): with the
store down every request fails alike, and one line each was about 1,900 lines a second."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.clock import FixedClock
from gateway.keys import RUNTIME
from gateway.log_repeats import Repeats
from tests.support import intercept_app


def test_a_burst_is_one_line_then_a_count() -> None:
    clock = FixedClock(1000.0)
    lines: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("test.repeats")
    logger.addHandler(Catch())
    logger.propagate = False
    repeats = Repeats(logger, interval=10.0, clock=clock)
    for _ in range(50):
        repeats.log(logging.ERROR, "store", "store unavailable: %s", "refused")
        clock.advance(0.1)
    repeats.log(logging.ERROR, "other", "another failure")
    assert lines == ["store unavailable: refused", "another failure"]
    clock.advance(10)
    repeats.log(logging.ERROR, "store", "store unavailable: %s", "refused")
    assert lines[-1].startswith("store unavailable: refused (and 49 more like it in the last")


async def test_store_down_logs_once_not_per_request(
    make_gateway: Any, legacy_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    await client.app[RUNTIME].store.close()
    for _ in range(30):
        answer = await client.get("/", headers={"Cookie": "gateway_session=abc"})
        assert answer.status == 503
    store_lines = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(store_lines) == 1
