"""Factor-change notices: sent to the address known for the user, never blocking on failure."""

from __future__ import annotations

import pytest

from gateway.notices import factor_changed


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = fail

    async def send_email(self, to: str, subject: str, body: str) -> None:
        if self.fail:
            raise ConnectionRefusedError("smtp down")
        self.sent.append((to, subject, body))


async def test_notice_goes_to_the_user_address() -> None:
    """A user named by email address gets the notice there, naming the change and the site."""
    recorder = Recorder()
    assert await factor_changed(
        recorder, "alice@acme.example", "An authenticator app was added", site="Acme"
    )
    [(to, subject, body)] = recorder.sent
    assert to == "alice@acme.example"
    assert "authenticator app was added" in subject
    assert "Acme" in body and "tell your company's administrator" in body


async def test_identity_email_wins_and_unknown_address_is_skipped() -> None:
    recorder = Recorder()
    assert await factor_changed(
        recorder, "carol", "A passkey was added", identity_email="c@x.example"
    )
    assert recorder.sent[0][0] == "c@x.example"
    assert not await factor_changed(recorder, "carol", "A passkey was added")
    assert len(recorder.sent) == 1


async def test_no_sender_or_a_failing_one_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """A missing or failing email sender is logged; the sign-in that triggered it goes on."""
    assert not await factor_changed(None, "a@b.example", "A passkey was added")
    assert not await factor_changed(Recorder(fail=True), "a@b.example", "A passkey was added")
    assert any("could not be sent" in r.getMessage() for r in caplog.records)
