"""Fixtures for the proxy tests: the recording upstream application on a real port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proxy.helpers import write_users_file


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_users_file(tmp_path)
