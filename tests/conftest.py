"""Fixtures: an upstream application, a real redis-server, and a gateway built in-process around
them (on SQLite, or on Redis for the modules in BOTH_STORES)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import build_runtime, create_app
from gateway.clock import FixedClock
from gateway.demo.legacy import create_legacy_app
from gateway.policy import load_policy_dir
from gateway.server import edge_runner
from gateway.settings import Listen, settings_from_dict
from tests.redisserver import DATABASES, RedisCluster, RedisServer
from tests.support import settings_dict

# fixtures shared by the modules that send codes and notices
pytest_plugins = ["tests.senders.fixtures", "tests.proxy.fixtures"]

LEGACY_ACCOUNTS = {"alice@example.com": "alice-password", "bob@example.com": "bob-password"}

GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]

# The integration tests that lean on the store most also run with the gateway on Redis.
BOTH_STORES = {
    "tests/identity/test_codes.py",
    "tests/identity/test_intercept.py",
    "tests/identity/test_recovery.py",
    "tests/test_regulation.py",
}
# ...except these, which count rows in SQLite's own tables
SQLITE_ONLY = {
    "test_a_code_is_bound_to_the_session_and_used_once",
    "test_failing_provider_says_so_and_counts_nothing",
}



@pytest.fixture(autouse=True)
def _audit_logger_restored() -> Iterator[None]:
    """A CLI command run in-process points the audit logger at standard error and stops its
    propagation (gateway.cli); later tests reading audit lines through caplog must not depend
    on which tests ran before them."""
    audit_log = logging.getLogger("gateway.audit")
    saved = (list(audit_log.handlers), audit_log.propagate, audit_log.level)
    yield
    audit_log.handlers[:] = saved[0]
    audit_log.propagate, audit_log.level = saved[1], saved[2]

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" not in metafunc.fixturenames:
        return
    module = Path(metafunc.definition.path).relative_to(Path(__file__).parent.parent).as_posix()
    if module in BOTH_STORES and metafunc.definition.originalname not in SQLITE_ONLY:
        metafunc.parametrize("store_backend", ["sqlite", "redis"], indirect=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run; tests share it through `redis_url`."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """Three real redis-servers joined into a Redis Cluster, for the store's contract suite."""
    try:
        cluster = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.stop()


_databases = itertools.count(1)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL of this test's own: a database number nobody used before, emptied."""
    db = next(_databases) % DATABASES
    with redis_server.client(db) as client:
        client.flushdb()
    return redis_server.url(db)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """sqlite, or redis for the tests BOTH_STORES runs twice."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
async def legacy_server() -> Any:
    """The demo's legacy application (its own login form and session cookie) on a real port."""
    server = TestServer(create_legacy_app(LEGACY_ACCOUNTS))
    await server.start_server()
    yield server
    await server.close()


class EdgeTestServer(TestServer):
    """The test client's server as `gateway run` serves an application: the edge's limits
    (gateway.protocol) and the lean dispatch of proxied requests (gateway.dispatch)."""

    def __init__(self, app: web.Application, listen: Listen) -> None:
        super().__init__(app)
        self.listen = listen

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return edge_runner(self.app, self.listen, **kwargs)


@pytest.fixture
async def make_gateway(
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    store_backend: str,
    request: pytest.FixtureRequest,
) -> GatewayFactory:
    """A gateway in this test's loop: make_gateway(applications, policies=..., clock=...). Its
    store is SQLite under tmp_path, or this test's Redis database (store_backend "redis"); a
    `store=URL` keyword names another."""
    if store_backend == "redis":
        extra_store = {"store": request.getfixturevalue("redis_url")}
    else:
        extra_store = {}

    async def factory(
        applications: dict[str, Any],
        policies: dict[str, str] | None = None,
        clock: FixedClock | None = None,
        **extra: Any,
    ) -> TestClient[web.Request, web.Application]:
        data = settings_dict(tmp_path, applications, policies, **{**extra_store, **extra})
        settings = settings_from_dict(data, source=tmp_path / "gateway.yaml")
        policy = load_policy_dir(
            settings.policy_dir, known_apps=[a.name for a in settings.applications]
        )
        runtime = (
            build_runtime(settings, policy, clock=clock)
            if clock
            else build_runtime(settings, policy)
        )
        return await aiohttp_client(EdgeTestServer(create_app(runtime), settings.listen))

    return factory
