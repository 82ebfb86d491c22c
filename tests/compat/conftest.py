"""The third-party applications, each started once for the test session (on a free port, with
its own data under tmp) and stopped at its end; each test puts its own gateway in front."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compat import app_php, app_spa
from tests.compat.app_django import DjangoAdmin, start_django_admin
from tests.compat.app_flask import CalibreWeb, start_calibreweb
from tests.compat.app_php import DokuWiki
from tests.compat.app_spa import NodeRed
from tests.compat.support import served


@pytest.fixture(scope="session")
def django_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoAdmin]:
    """Django's admin site served by gunicorn."""
    yield from served(start_django_admin, tmp_path_factory.mktemp("django"))


@pytest.fixture(scope="session")
def calibreweb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalibreWeb]:
    """calibre-web with alice@example.com and mallory@example.com."""
    yield from served(start_calibreweb, tmp_path_factory.mktemp("calibreweb"))


@pytest.fixture(scope="session")
def dokuwiki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DokuWiki]:
    """DokuWiki with its own configuration and data; skips when it cannot be installed."""
    yield from served(DokuWiki.start, tmp_path_factory.mktemp("dokuwiki"), app_php.ensure_installed)


@pytest.fixture(scope="session")
def node_red(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeRed]:
    """Node-RED with its own settings and user directory; skips when it cannot be installed."""
    yield from served(NodeRed.start, tmp_path_factory.mktemp("node-red"), app_spa.ensure_installed)
