from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oidc.support import Provider, start_provider


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """node-oidc-provider on a loopback port, for the whole session."""
    running = start_provider(tmp_path_factory.mktemp("oidc-provider"))
    yield running
    running.stop()
