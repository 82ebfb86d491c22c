"""One real slapd for the directory tests (tests/ldap/slapd.py), started once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ldap.slapd import Slapd, make_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    try:
        server = make_slapd(tmp_path_factory.mktemp("slapd") / "run")
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot start slapd: {exc}", pytrace=False)
    yield server
    server.stop()
