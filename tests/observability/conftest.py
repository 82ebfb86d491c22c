"""Fixtures for the audit log and metrics tests: audit lines as dicts, an upstream that echoes,
and a portal-mode gateway whose users sign in with a password and an authenticator app."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.identity.portal import hash_password

USER, PASSWORD = "carol@example.com", "carol-password"


class AuditLines(logging.Handler):
    """Every line written on the `gateway.audit` logger, parsed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    def one(self, name: str, **fields: Any) -> dict[str, Any]:
        """The one line of event `name` with these field values."""
        found = [
            line
            for line in self.events(name)
            if all(line.get(key) == value for key, value in fields.items())
        ]
        assert len(found) == 1, (name, fields, self.lines)
        return found[0]


@pytest.fixture
def audited() -> Iterator[AuditLines]:
    """The audit lines of this test, caught on the logger itself (whatever propagates)."""
    logger = logging.getLogger("gateway.audit")
    handler = AuditLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"application page {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    return path


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: Any, **headers: str) -> Samples:
    """/.gateway/metrics read with Prometheus's own text parser."""
    response = await client.get("/.gateway/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series not yet made (a counter nobody has moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
