"""The Store protocol, one behaviour for both backends: every test runs on SQLite, on a real
redis-server and on a real three-node Redis Cluster. Times are passed explicitly and sit far
from the real time (a fixed clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.store import Deferral, Store, open_store
from gateway.store.base import (
    BROWSERS_KEPT,
    MEMBER_OF,
    RememberedBrowser,
    StoredSession,
    UserRecord,
)

T0 = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture(params=["sqlite", "redis", "cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'g.db'}"
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
    else:
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        url = cluster.url
    opened = open_store(url, clock=FixedClock(T0))
    await opened.open()
    yield opened
    await opened.close()


# --- sessions ------------------------------------------------------------------------------------


async def test_session_round_trip_and_expiry(store: Store) -> None:
    """A session is found until its expiry (checked against the `now` given), then not."""
    await store.put_session("k", "u", "blob", expires_at=T0 + 60)
    assert await store.get_session("k", T0) == "blob"
    assert await store.get_session("k", T0 + 59.5) == "blob"
    assert await store.get_session("k", T0 + 60) is None
    assert await store.get_session("other", T0) is None


async def test_session_put_again_replaces_blob_user_and_expiry(store: Store) -> None:
    """Saving a session again replaces it: the new blob, the new expiry, the new owner."""
    await store.put_session("k", None, "anonymous", expires_at=T0 + 60)
    await store.put_session("k", "u", "signed in", expires_at=T0 + 600)
    assert await store.get_session("k", T0 + 300) == "signed in"
    assert await store.delete_user_sessions("u") == 1
    assert await store.get_session("k", T0) is None


async def test_delete_session(store: Store) -> None:
    """One session ends; the user's others stay."""
    await store.put_session("a", "u", "1", expires_at=T0 + 60)
    await store.put_session("b", "u", "2", expires_at=T0 + 60)
    await store.delete_session("a")
    await store.delete_session("never existed")
    assert await store.get_session("a", T0) is None
    assert await store.get_session("b", T0) == "2"


async def test_delete_user_sessions_ends_that_users_sessions_only(store: Store) -> None:
    """Logout everywhere: all of the user's sessions go, another user's and anonymous ones stay,
    and a session that changed hands is not ended with its former owner."""
    for key in ("a", "b", "c"):
        await store.put_session(key, "u", key, expires_at=T0 + 60)
    await store.put_session("v1", "v", "v1", expires_at=T0 + 60)
    await store.put_session("anon", None, "anon", expires_at=T0 + 60)
    await store.put_session("moved", "u", "m", expires_at=T0 + 60)
    await store.put_session("moved", "v", "m", expires_at=T0 + 60)
    assert await store.delete_user_sessions("u") == 3
    for key in ("a", "b", "c"):
        assert await store.get_session(key, T0) is None
    assert await store.get_session("v1", T0) == "v1"
    assert await store.get_session("anon", T0) == "anon"
    assert await store.get_session("moved", T0) == "m"
    assert await store.delete_user_sessions("u") == 0
    assert await store.delete_user_sessions("nobody") == 0


async def test_list_user_sessions_lists_that_users_live_sessions(store: Store) -> None:
    """The sessions page's listing: the user's live sessions by key, each with its blob and
    expiry; not another user's, not an anonymous one, not one that expired, was ended or
    changed hands."""
    await store.put_session("b", "u", "blob b", expires_at=T0 + 600)
    await store.put_session("a", "u", "blob a", expires_at=T0 + 60)
    await store.put_session("old", "u", "old", expires_at=T0 + 10)
    await store.put_session("ended", "u", "ended", expires_at=T0 + 60)
    await store.put_session("moved", "u", "m", expires_at=T0 + 60)
    await store.put_session("moved", "v", "m", expires_at=T0 + 60)
    await store.put_session("v1", "v", "v1", expires_at=T0 + 60)
    await store.put_session("anon", None, "anon", expires_at=T0 + 60)
    await store.delete_session("ended")
    found = await store.list_user_sessions("u", T0 + 10)
    assert found == [
        StoredSession("a", "blob a", T0 + 60),
        StoredSession("b", "blob b", T0 + 600),
    ]
    assert [s.key for s in await store.list_user_sessions("v", T0)] == ["moved", "v1"]
    assert await store.list_user_sessions("nobody", T0) == []
    assert [s.key for s in await store.list_user_sessions("u", T0 + 60)] == ["b"]


async def test_list_user_sessions_follows_updates_and_user_logout(store: Store) -> None:
    """A session saved again is listed with its new blob and expiry; after a logout everywhere
    the user has none; braces in a user name keep the listing to that user."""
    await store.put_session("k", "u", "first", expires_at=T0 + 60)
    assert await store.update_session("k", "u", "second", expires_at=T0 + 900)
    assert await store.list_user_sessions("u", T0 + 120) == [StoredSession("k", "second", T0 + 900)]
    await store.put_session("x", "{u}", "braced", expires_at=T0 + 60)
    assert [s.key for s in await store.list_user_sessions("{u}", T0)] == ["x"]
    assert await store.delete_user_sessions("u") == 1
    assert await store.list_user_sessions("u", T0) == []
    assert [s.key for s in await store.list_user_sessions("{u}", T0)] == ["x"]


async def test_purge_keeps_live_records(store: Store) -> None:
    """Purging never drops what is live: sessions, codes, recent failures and sends."""
    await store.put_session("live", "u", "blob", expires_at=T0 + 60)
    await store.put_code("live", {"d": 1}, T0 + 60)
    await store.record_failure("user:u", T0 - 10)
    assert await store.reserve_send("u", T0 - 5, 30, 5)
    purged = await store.purge_expired(T0)
    assert purged >= 0
    assert await store.get_session("live", T0) == "blob"
    assert await store.get_code("live", T0) == {"d": 1}
    assert await store.failures_since("user:u", 0) == [T0 - 10]
    assert await store.sends_since("u", 0) == [T0 - 5]


# --- enrolments ----------------------------------------------------------------------------------


async def test_enrolments(store: Store) -> None:
    """One record per (user, method), listed in order, removed one at a time or all at once."""
    assert await store.get_enrolment("u", "totp") is None
    assert await store.list_methods("u") == []
    await store.put_enrolment("u", "totp", {"secret": "x", "n": 1})
    await store.put_enrolment("u", "sms", {"phone": "enc"})
    await store.put_enrolment("u", "totp", {"secret": "y", "n": 2})
    await store.put_enrolment("v", "email", {"address": "enc"})
    assert await store.get_enrolment("u", "totp") == {"secret": "y", "n": 2}
    assert await store.list_methods("u") == ["sms", "totp"]
    assert await store.delete_enrolment("u", "sms")
    assert not await store.delete_enrolment("u", "sms")
    assert await store.list_methods("u") == ["totp"]
    assert await store.claim_totp_step("u", 5)
    assert await store.delete_enrolments("u") == 1
    assert await store.list_methods("u") == []
    assert await store.last_totp_step("u") is None  # a reset forgets the used steps too
    assert await store.delete_enrolments("u") == 0
    assert await store.list_methods("v") == ["email"]


async def test_replace_enrolment_is_compare_and_set(store: Store) -> None:
    """A replacement happens only over the record it was based on; of ten racing replacements
    from the same record, exactly one wins and its record is the one kept."""
    old = {"codes": ["a", "b"], "counter": 1}
    await store.put_enrolment("u", "recovery", old)
    assert not await store.replace_enrolment("u", "recovery", {"codes": []}, {"codes": ["z"]})
    assert not await store.replace_enrolment("u", "missing", old, {"codes": ["z"]})
    news = [{"codes": ["b"], "counter": 2, "by": n} for n in range(10)]
    results = await asyncio.gather(
        *(store.replace_enrolment("u", "recovery", old, new) for new in news)
    )
    assert results.count(True) == 1
    assert await store.get_enrolment("u", "recovery") == news[results.index(True)]
    assert await store.get_enrolment("u", "missing") is None


# --- the enforcement ratchet ---------------------------------------------------------------------


async def test_enforcement_ratchet(store: Store) -> None:
    """The first enforcement is kept (its time too); members are listed apart from companies;
    lifting a company lifts its members and nobody else's."""
    assert await store.enforced_since("acme") is None
    assert await store.enforce("acme", T0, "policy acme.yaml")
    assert not await store.enforce("acme", T0 + 10, "policy again")
    assert await store.enforced_since("acme") == T0
    assert await store.enforce("domain:acme.com", T0, MEMBER_OF + "acme")
    assert await store.enforce("user:x@gmail.com", T0 + 1, MEMBER_OF + "acme")
    assert await store.enforce("globex", T0 + 2, "policy globex.yaml")
    assert await store.enforce("domain:globex.com", T0 + 2, MEMBER_OF + "globex")
    assert await store.enforced_companies() == {"acme": T0, "globex": T0 + 2}
    assert await store.enforced_members() == {
        "domain:acme.com": ("acme", T0),
        "user:x@gmail.com": ("acme", T0 + 1),
        "domain:globex.com": ("globex", T0 + 2),
    }
    assert await store.lift_enforcement("acme")
    assert not await store.lift_enforcement("acme")
    assert await store.enforced_since("acme") is None
    assert await store.enforced_companies() == {"globex": T0 + 2}
    assert await store.enforced_members() == {"domain:globex.com": ("globex", T0 + 2)}


async def test_racing_enforcements_first_writer_wins(store: Store) -> None:
    """Ten gateways loading the same policy at once: exactly one records the enforcement."""
    results = await asyncio.gather(*(store.enforce("acme", T0 + n, "policy") for n in range(10)))
    assert results.count(True) == 1
    assert await store.enforced_since("acme") == T0 + results.index(True)


# --- deferrals -----------------------------------------------------------------------------------


async def test_deferrals(store: Store) -> None:
    """One deferral per user; listed per company; a new one for another company moves the user."""
    assert await store.get_deferral("u") is None
    await store.put_deferral("u", "acme", T0, T0 + 2 * DAY)
    await store.put_deferral("v", "acme", T0 + 1, T0 + DAY)
    await store.put_deferral("w", "globex", T0, T0 + DAY)
    assert await store.get_deferral("u") == Deferral("acme", T0, T0 + 2 * DAY)
    assert await store.list_deferrals("acme") == {"u": T0 + 2 * DAY, "v": T0 + DAY}
    await store.put_deferral("v", "globex", T0 + 5, T0 + 3 * DAY)
    assert await store.get_deferral("v") == Deferral("globex", T0 + 5, T0 + 3 * DAY)
    assert await store.list_deferrals("acme") == {"u": T0 + 2 * DAY}
    assert await store.list_deferrals("globex") == {"v": T0 + 3 * DAY, "w": T0 + DAY}
    await store.put_deferral("u", "acme", T0 + 10, T0 + DAY)
    assert await store.list_deferrals("acme") == {"u": T0 + DAY}
    assert await store.list_deferrals("nobody") == {}


# --- one-time codes ------------------------------------------------------------------------------


async def test_codes(store: Store) -> None:
    """A code is kept until it expires (checked against `now`), replaced by a new one, deleted."""
    assert await store.get_code("sms:k", T0) is None
    await store.put_code("sms:k", {"digest": "a", "tries": 0}, T0 + 600)
    assert await store.get_code("sms:k", T0 + 599) == {"digest": "a", "tries": 0}
    assert await store.get_code("sms:k", T0 + 600) is None
    await store.put_code("sms:k", {"digest": "b", "tries": 1}, T0 + 900)
    assert await store.get_code("sms:k", T0 + 800) == {"digest": "b", "tries": 1}
    await store.delete_code("sms:k")
    assert await store.get_code("sms:k", T0) is None
    await store.delete_code("sms:k")


async def test_take_code_removes_it(store: Store) -> None:
    """Taking a code returns it once; an expired code is not taken; another key is untouched."""
    await store.put_code("sms:k", {"digest": "a"}, T0 + 600)
    await store.put_code("email:k", {"digest": "e"}, T0 + 600)
    assert await store.take_code("sms:k", T0 + 600) is None  # expired at that moment
    assert await store.take_code("sms:k", T0) == {"digest": "a"}
    assert await store.take_code("sms:k", T0) is None
    assert await store.get_code("sms:k", T0) is None
    assert await store.get_code("email:k", T0) == {"digest": "e"}


async def test_racing_takes_of_a_code_one_wins(store: Store) -> None:
    """Ten submissions of the same code at once: exactly one gets it."""
    await store.put_code("sms:k", {"digest": "a"}, T0 + 600)
    results = await asyncio.gather(*(store.take_code("sms:k", T0) for _ in range(10)))
    assert [r for r in results if r is not None] == [{"digest": "a"}]


# --- failures ------------------------------------------------------------------------------------


async def test_failures(store: Store) -> None:
    """Failures are kept per key, in order, equal times counted twice, cleared per key."""
    assert await store.failures_since("user:u", 0) == []
    for at in (T0 + 3, T0 + 1, T0 + 2, T0 + 2):
        await store.record_failure("user:u", at)
    await store.record_failure("ip:10.0.0.1", T0)
    assert await store.failures_since("user:u", T0) == [T0 + 1, T0 + 2, T0 + 2, T0 + 3]
    assert await store.failures_since("user:u", T0 + 2) == [T0 + 2, T0 + 2, T0 + 3]
    await store.clear_failures("user:u")
    assert await store.failures_since("user:u", 0) == []
    assert await store.failures_since("ip:10.0.0.1", 0) == [T0]


async def test_failures_older_than_a_day_are_dropped(store: Store) -> None:
    """A failure more than a day before the latest one of its key is forgotten."""
    await store.record_failure("user:u", T0 - DAY - 10)
    await store.record_failure("user:u", T0)
    assert await store.failures_since("user:u", 0) == [T0]


async def test_failure_keys_are_listed_by_their_latest_failure(store: Store) -> None:
    """Keys noted under a name are listed (in order) while their latest failure is at or after
    `since`; an earlier time never moves a key back; names are kept apart, and a key noted more
    than a day before the name's latest is forgotten."""
    name = "places:u"
    assert await store.failure_keys(name, 0) == []
    await store.note_failure_key(name, "user_ip:u|10.0.0.2", T0)
    await store.note_failure_key(name, "user_ip:u|10.0.0.1", T0 + 10)
    await store.note_failure_key(name, "user_ip:u|10.0.0.2", T0 + 20)
    await store.note_failure_key(name, "user_ip:u|10.0.0.2", T0 + 5)  # late news of an older one
    await store.note_failure_key("places:v", "user_ip:v|10.0.0.3", T0)
    assert await store.failure_keys(name, T0) == ["user_ip:u|10.0.0.1", "user_ip:u|10.0.0.2"]
    assert await store.failure_keys(name, T0 + 11) == ["user_ip:u|10.0.0.2"]
    assert await store.failure_keys(name, T0 + 20) == ["user_ip:u|10.0.0.2"]
    assert await store.failure_keys(name, T0 + 21) == []
    assert await store.failure_keys("places:v", 0) == ["user_ip:v|10.0.0.3"]
    await store.note_failure_key(name, "user_browser:u|b", T0 + DAY + 15)
    assert await store.failure_keys(name, 0) == ["user_browser:u|b", "user_ip:u|10.0.0.2"]


async def test_failure_key_names_with_braces_stay_apart(store: Store) -> None:
    """A name is a Redis Cluster hash tag: braces in it neither break nor merge lists."""
    for name in ("places:}x", "places:{a}b", "places:%7D", "places:}"):
        await store.note_failure_key(name, f"user_ip:{name}|10.0.0.1", T0)
    assert await store.failure_keys("places:}", 0) == ["user_ip:places:}|10.0.0.1"]
    assert await store.failure_keys("places:{a}b", 0) == ["user_ip:places:{a}b|10.0.0.1"]


# --- code sends ----------------------------------------------------------------------------------


async def test_reserve_send_pause_and_hourly_cap(store: Store) -> None:
    """A send is refused within `pause` of the last one and once `per_hour` went out in the
    hour; a released send gives its slot back."""
    assert await store.reserve_send("u", T0, 30, 3)
    assert not await store.reserve_send("u", T0 + 29, 30, 3)
    assert await store.reserve_send("u", T0 + 30, 30, 3)
    assert await store.reserve_send("u", T0 + 60, 30, 3)
    assert not await store.reserve_send("u", T0 + 120, 30, 3)  # three in the hour
    assert await store.sends_since("u", T0) == [T0, T0 + 30, T0 + 60]
    assert await store.sends_since("u", T0 + 30) == [T0 + 30, T0 + 60]
    await store.release_send("u", T0 + 60)
    assert await store.sends_since("u", 0) == [T0, T0 + 30]
    assert await store.reserve_send("u", T0 + 120, 30, 3)
    assert await store.reserve_send("u", T0 + 3600, 30, 3)  # the first left the hour
    assert await store.reserve_send("v", T0 + 120, 30, 3)  # per user


async def test_racing_sends_one_is_reserved(store: Store) -> None:
    """Ten "send again" clicks at once: exactly one send is reserved."""
    results = await asyncio.gather(*(store.reserve_send("u", T0, 30, 5) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.sends_since("u", 0) == [T0]


# --- TOTP steps ----------------------------------------------------------------------------------


async def test_totp_steps_only_move_forward(store: Store) -> None:
    """A step is claimed once; an earlier one never; a later one always."""
    assert await store.last_totp_step("u") is None
    assert await store.claim_totp_step("u", 100)
    assert not await store.claim_totp_step("u", 100)
    assert not await store.claim_totp_step("u", 99)
    assert await store.claim_totp_step("u", 101)
    assert await store.last_totp_step("u") == 101
    assert await store.claim_totp_step("v", 50)


async def test_racing_claims_of_a_step_one_wins(store: Store) -> None:
    """The same TOTP code submitted ten times at once: exactly one claim succeeds."""
    results = await asyncio.gather(*(store.claim_totp_step("u", 7) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.last_totp_step("u") == 7


async def test_ping(store: Store) -> None:
    """An open store answers."""
    await store.ping()


# --- updating a stored session, holds ------------------------------------------------------------


async def test_update_session_never_brings_an_ended_one_back(store: Store) -> None:
    """A late save of a session that was ended meanwhile (logout elsewhere) stores nothing."""
    assert not await store.update_session("k", "u", "late", expires_at=T0 + 60)
    assert await store.get_session("k", T0) is None
    await store.put_session("k", "u", "first", expires_at=T0 + 60)
    assert await store.update_session("k", "u", "second", expires_at=T0 + 120)
    assert await store.get_session("k", T0 + 90) == "second"
    assert await store.delete_user_sessions("u") == 1
    assert not await store.update_session("k", "u", "third", expires_at=T0 + 120)
    assert await store.get_session("k", T0) is None


async def test_holds_are_exclusive_until_released_or_lapsed(store: Store) -> None:
    """Of ten racing takers one holds the name; only its own release frees it; a hold lapses
    after its time even if never released."""
    results = await asyncio.gather(*(store.acquire("answer:u", f"t{n}", T0, 30) for n in range(10)))
    assert results.count(True) == 1
    holder = f"t{results.index(True)}"
    assert await store.acquire("answer:v", "other", T0, 30)  # another name is free
    await store.release("answer:u", "not the holder")
    assert not await store.acquire("answer:u", "late", T0 + 1, 30)
    await store.release("answer:u", holder)
    assert await store.acquire("answer:u", "next", T0 + 2, 30)
    assert not await store.acquire("answer:u", "later", T0 + 31, 30)
    assert await store.acquire("answer:u", "after the lapse", T0 + 32, 30)


async def test_delete_session_and_deferral_say_whether_there_was_one(store: Store) -> None:
    await store.put_session("k", "u", "blob", expires_at=T0 + 60)
    assert await store.delete_session("k")
    assert not await store.delete_session("k")
    await store.put_deferral("u", "acme", T0, T0 + DAY)
    assert await store.delete_deferral("u")
    assert await store.get_deferral("u") is None
    assert await store.list_deferrals("acme") == {}
    assert not await store.delete_deferral("u")


async def test_user_names_with_braces_stay_in_one_slot(store: Store) -> None:
    """A user name is part of a Redis Cluster hash tag: "}x" or "{a}" must not end it early
    (multi-key operations would then span slots and fail)."""
    for user in ("}x", "{a}b", "%7D"):
        await store.put_enrolment(user, "totp", {"secret": user})
        await store.put_session(f"s{user}", user, "blob", expires_at=T0 + 60)
        assert await store.claim_totp_step(user, 1)
        assert await store.delete_enrolments(user) == 1
        assert await store.delete_user_sessions(user) == 1
    await store.put_enrolment("%7D", "totp", {"secret": "b"})
    assert await store.get_enrolment("}", "totp") is None  # escaping keeps names apart


# --- users seen, browsers seen -------------------------------------------------------------------


async def test_user_records_merge_facts_and_keep_first_seen(store: Store) -> None:
    """A record is made at the first sighting; later ones merge their facts (None removes one),
    move the user to another company, and never change first_seen."""
    assert await store.get_user("u@acme.com") is None
    await store.note_user("u@acme.com", "acme", T0 + 0.25, {"last_sign_in": T0 + 0.25})
    await store.note_user(
        "u@acme.com",
        "acme",
        T0 + 60.125,
        {"last_2fa": T0 + 60.125, "last_2fa_ip": "2001:db8::1", "name": "Ünïcode Ü"},
    )
    record = await store.get_user("u@acme.com")
    assert record == UserRecord(
        "u@acme.com",
        "acme",
        T0 + 0.25,
        {
            "last_sign_in": T0 + 0.25,
            "last_2fa": T0 + 60.125,
            "last_2fa_ip": "2001:db8::1",
            "name": "Ünïcode Ü",
        },
    )
    await store.note_user("u@acme.com", "acme", T0 + 99, {"name": None, "pending_phone": "enc"})
    record = await store.get_user("u@acme.com")
    assert record is not None
    assert record.first_seen == T0 + 0.25
    assert "name" not in record.facts and record.facts["pending_phone"] == "enc"
    assert record.facts["last_2fa"] == T0 + 60.125


async def test_users_are_listed_by_the_company_they_were_last_seen_in(store: Store) -> None:
    """Listing a company gives its users in name order; a user who moved is listed only under
    the new company; a user of no company is in no list."""
    await store.note_user("b@acme.com", "acme", T0, {})
    await store.note_user("a@acme.com", "acme", T0, {"last_sign_in": T0})
    await store.note_user("g@globex.com", "globex", T0, {})
    await store.note_user("m@gmail.com", "acme", T0, {})
    await store.note_user("m@gmail.com", "globex", T0 + 1, {})
    await store.note_user("nobody@else.com", None, T0, {})
    assert [r.user for r in await store.list_users("acme")] == ["a@acme.com", "b@acme.com"]
    assert [r.user for r in await store.list_users("globex")] == ["g@globex.com", "m@gmail.com"]
    assert await store.list_users("initech") == []
    lonely = await store.get_user("nobody@else.com")
    assert lonely is not None and lonely.company is None


async def test_browsers_are_counted_once_each_within_the_window(store: Store) -> None:
    """Each browser counts once however often it is seen; those last seen before the window's
    start are forgotten; another user's browsers do not count."""
    assert await store.browsers_since("u", 0) == 0
    assert await store.note_browser("u", "b1", T0, T0 - 7 * DAY) == 1
    assert await store.note_browser("u", "b1", T0 + 10, T0 + 10 - 7 * DAY) == 1
    assert await store.note_browser("u", "b2", T0 + 20, T0 + 20 - 7 * DAY) == 2
    assert await store.note_browser("v", "b3", T0 + 20, T0 + 20 - 7 * DAY) == 1
    assert await store.browsers_since("u", T0 + 5) == 2
    assert await store.browsers_since("u", T0 + 15) == 1  # b1 was last seen at T0 + 10
    later = T0 + 7 * DAY + 15
    assert await store.note_browser("u", "b3", later, later - 7 * DAY) == 2  # b1 has left
    assert await store.browsers_since("u", later - 7 * DAY) == 2


async def test_purge_keeps_recent_browsers(store: Store) -> None:
    """Purging keeps browsers seen within the longest window kept, and users' records."""
    await store.note_browser("u", "b1", T0 - 10, T0 - 10 - 7 * DAY)
    await store.note_user("u", "acme", T0 - 10, {})
    await store.purge_expired(T0)
    assert await store.browsers_since("u", 0) == 1
    assert await store.get_user("u") is not None


async def test_known_browsers_are_known_per_user_since_their_last_sighting(store: Store) -> None:
    """A browser recorded for a user is known to that user only, from its latest sighting on (an
    older one noted late does not move it back); the shared-login browsers are another list."""
    assert not await store.knows_browser("u", "b1", 0)
    await store.note_known_browser("u", "b1", T0)
    await store.note_known_browser("u", "b1", T0 + 20)
    await store.note_known_browser("u", "b1", T0 + 10)  # late: the later sighting stays
    assert await store.knows_browser("u", "b1", T0 + 20)
    assert not await store.knows_browser("u", "b1", T0 + 20.5)
    assert not await store.knows_browser("u", "b2", 0)
    assert not await store.knows_browser("v", "b1", 0)
    assert not await store.knows_browser("u}", "b1", 0)  # escaping keeps names apart
    assert await store.browsers_since("u", 0) == 0


async def test_known_browsers_are_kept_thirty_days(store: Store) -> None:
    """A browser noted again is kept; one not seen for BROWSERS_KEPT is forgotten when the user's
    next browser is noted, and by a purge; a recent one survives the purge."""
    assert BROWSERS_KEPT == 30 * DAY
    await store.note_known_browser("u", "old", T0 - BROWSERS_KEPT - 10)
    await store.note_known_browser("u", "new", T0 - 10)
    await store.note_known_browser("v", "old", T0 - BROWSERS_KEPT - 10)
    await store.purge_expired(T0)
    assert not await store.knows_browser("u", "old", 0)
    assert not await store.knows_browser("v", "old", 0)
    assert await store.knows_browser("u", "new", T0 - 10)


# --- remembered browsers -------------------------------------------------------------------------


async def test_a_remembered_browser_is_found_until_it_lapses(store: Store) -> None:
    """Found with its record until `until` (a second before it, yes; at it, no)."""
    until = T0 + 30 * DAY
    await store.remember_browser("u", "h1", {"company": "acme", "ip": "192.0.2.1"}, until)
    found = await store.remembered_browser("u", "h1", T0 + 30 * DAY - 1)
    assert found == RememberedBrowser("h1", {"company": "acme", "ip": "192.0.2.1"}, until)
    assert await store.remembered_browser("u", "h1", T0 + 30 * DAY) is None
    assert await store.remembered_browser("u", "other", T0) is None
    assert await store.remembered_browser("v", "h1", T0) is None  # another user's handle


async def test_remembered_browsers_are_listed_per_user_live_only(store: Store) -> None:
    """The user's live ones, soonest to lapse first; another user's and lapsed ones are not."""
    await store.remember_browser("u", "late", {"n": 1}, T0 + 20 * DAY)
    await store.remember_browser("u", "soon", {"n": 2}, T0 + 10 * DAY)
    await store.remember_browser("v", "theirs", {"n": 3}, T0 + 10 * DAY)
    assert [r.handle for r in await store.list_remembered("u", T0)] == ["soon", "late"]
    assert [r.handle for r in await store.list_remembered("u", T0 + 10 * DAY)] == ["late"]
    assert await store.list_remembered("u", T0 + 20 * DAY) == []
    assert await store.list_remembered("nobody", T0) == []


async def test_remembering_again_replaces_record_and_time(store: Store) -> None:
    await store.remember_browser("u", "h", {"n": 1}, T0 + DAY)
    await store.remember_browser("u", "h", {"n": 2}, T0 + 2 * DAY)
    found = await store.remembered_browser("u", "h", T0 + DAY + 1)
    assert found is not None and found.record == {"n": 2} and found.until == T0 + 2 * DAY


async def test_forgetting_one_or_all_remembered_browsers(store: Store) -> None:
    """Forget one (says whether it was there), or all of a user's (how many); others stay."""
    for handle in ("a", "b", "c"):
        await store.remember_browser("u", handle, {}, T0 + DAY)
    await store.remember_browser("v", "a", {}, T0 + DAY)
    assert await store.forget_browser("u", "a") is True
    assert await store.forget_browser("u", "a") is False
    assert await store.remembered_browser("u", "a", T0) is None
    assert await store.forget_browsers("u") == 2
    assert await store.forget_browsers("u") == 0
    assert await store.list_remembered("u", T0) == []
    assert [r.handle for r in await store.list_remembered("v", T0)] == ["a"]


async def test_remembered_browsers_lapse_by_themselves(store: Store) -> None:
    """Purging drops lapsed ones and keeps live ones; on Redis the key has a TTL."""
    await store.remember_browser("u", "gone", {}, T0 + 10)
    await store.remember_browser("u", "kept", {}, T0 + DAY)
    await store.purge_expired(T0 + 10)
    assert [r.handle for r in await store.list_remembered("u", T0 + 10)] == ["kept"]
    assert [r.handle for r in await store.list_remembered("u", T0)] in (["gone", "kept"], ["kept"])


async def test_remembered_user_names_with_braces_stay_apart(store: Store) -> None:
    await store.remember_browser("{u}", "h", {}, T0 + DAY)
    await store.remember_browser("u", "h2", {}, T0 + DAY)
    assert [r.handle for r in await store.list_remembered("{u}", T0)] == ["h"]
    assert await store.forget_browsers("{u}") == 1
    assert [r.handle for r in await store.list_remembered("u", T0)] == ["h2"]
