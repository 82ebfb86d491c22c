"""What only the SQLite backend has to show: data survives a restart, the path errors, purging.
The behaviour both backends share is in test_contract.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.store import StoreUnavailable, open_store
from gateway.store.sqlite import SqliteStore, path_from_url


async def test_store_keeps_enrolment_and_sessions_across_restart(tmp_path: Path) -> None:
    """The SQLite store is a file: enrolments, used TOTP steps and sessions survive a reopen."""
    store = SqliteStore(tmp_path / "g.db")
    await store.open()
    await store.put_enrolment("u", "totp", {"secret": "x"})
    assert await store.claim_totp_step("u", 100)
    await store.put_session("k", "u", "blob", expires_at=time.time() + 60)
    await store.close()
    again = SqliteStore(tmp_path / "g.db")
    await again.open()
    assert await again.get_enrolment("u", "totp") == {"secret": "x"}
    assert not await again.claim_totp_step("u", 100)
    assert not await again.claim_totp_step("u", 99)
    assert await again.claim_totp_step("u", 101)
    assert await again.get_session("k", time.time()) == "blob"
    assert await again.get_session("k", time.time() + 120) is None
    assert await again.delete_user_sessions("u") == 1
    await again.close()


def test_store_url() -> None:
    """sqlite:///abs/path is that absolute path; other schemes are refused clearly for now."""
    assert path_from_url("sqlite:///var/lib/gateway/g.db") == Path("/var/lib/gateway/g.db")
    with pytest.raises(StoreUnavailable, match="not supported") as refused:
        open_store("memcached://user:hunter2@host")
    assert "hunter2" not in str(refused.value)


async def test_unopenable_store_is_a_clear_error(tmp_path: Path) -> None:
    """A store path that cannot be created fails with the path in the message."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SqliteStore(blocker / "sub" / "g.db")
    with pytest.raises(StoreUnavailable, match="cannot open the SQLite store"):
        await store.open()


async def test_purge_drops_expired_sessions_and_codes(tmp_path: Path) -> None:
    """Expired sessions and codes and day-old counters leave the file; live ones stay."""
    store = SqliteStore(tmp_path / "g.db")
    await store.open()
    now = time.time()
    await store.put_session("old", "u", "blob", expires_at=now - 1)
    await store.put_session("live", "u", "blob", expires_at=now + 60)
    await store.put_code("old", {"d": 1}, now - 1)
    await store.put_code("live", {"d": 1}, now + 60)
    await store.record_failure("user:u", now - 90000)
    await store.record_failure("user:u", now - 10)
    assert await store.purge_expired(now) == 2  # the day-old failure went at the next insert
    assert await store.get_session("live", now) == "blob"
    assert await store.get_code("live", now) == {"d": 1}
    assert await store.failures_since("user:u", 0) == [now - 10]
    await store.close()
