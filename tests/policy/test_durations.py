"""Durations: the short forms people write, and formatting back to them."""

from datetime import timedelta

import pytest

from gateway.durations import ago, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("48h", timedelta(hours=48)),
        ("21d", timedelta(days=21)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 2h", timedelta(days=1, hours=2)),
        ("1W2D", timedelta(days=9)),
        ("0s", timedelta(0)),
        ("90", timedelta(seconds=90)),
        (90, timedelta(seconds=90)),
        (0, timedelta(0)),
    ],
)
def test_parse_accepts_short_forms(text: str | int, expected: timedelta) -> None:
    """Each unit, combinations in order, spaces and case, and bare seconds are read."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "h", "2 days", "1.5h", "30m1h", "-5m", -5, "5y", "1h1h", True, 2.5, None]
)
def test_parse_rejects_anything_else_with_a_plain_message(text: object) -> None:
    """Unknown units, wrong order, negatives, fractions and non-text are refused."""
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(text)  # type: ignore[arg-type]
    assert "Traceback" not in str(caught.value)


def test_parse_refuses_absurdly_long_durations() -> None:
    """A value too big for timedelta is a ValueError, not an OverflowError."""
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999w")


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=12), "12h"),
        (timedelta(hours=24), "24h"),
        (timedelta(hours=48), "48h"),
        (timedelta(hours=49), "49h"),
        (timedelta(days=3), "3d"),
        (timedelta(days=21), "21d"),
        (timedelta(days=4, hours=1), "4d1h"),
        (timedelta(hours=1, minutes=30, seconds=5), "1h30m5s"),
    ],
)
def test_format_gives_the_short_form(duration: timedelta, expected: str) -> None:
    """Whole days under three are written in hours, as the pages say "48 hours"."""
    assert format_duration(duration) == expected


@pytest.mark.parametrize("seconds", [1, 59, 61, 3599, 86400, 200000, 1814400, 1234567])
def test_format_and_parse_round_trip(seconds: int) -> None:
    """Formatting then parsing gives back the same duration."""
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


def test_format_refuses_negative_durations() -> None:
    """A negative duration has no short form."""
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "just now"),  # a clock a little behind: never "in the future"
        (0, "just now"),
        (59.9, "just now"),
        (60, "1 minute ago"),
        (119, "1 minute ago"),  # rounded down: never sooner than it was
        (3599, "59 minutes ago"),
        (3600, "1 hour ago"),
        (86399, "23 hours ago"),
        (86400, "yesterday"),
        (2 * 86400 - 1, "yesterday"),
        (12 * 86400, "12 days ago"),
    ],
)
def test_how_long_ago_in_words(seconds: float, said: str) -> None:
    assert ago(seconds) == said


def test_a_moment_on_a_page_says_how_long_ago_and_the_day_when_older() -> None:
    from gateway.handlers.shared.pages import when

    at = 1_700_000_000.0  # 14 November 2023, 22:13 UTC
    assert when(at, at + 5) == {"iso": "2023-11-14T22:13:20+00:00", "text": "just now"}
    assert when(at, at + 3 * 86400 + 60) == {
        "iso": "2023-11-14T22:13:20+00:00",
        "text": "3 days ago (on 14 November 2023)",
    }
    assert when(None, at) is None
    assert when(1e20, at) is None  # a record's odd value: nothing shown, no 500
