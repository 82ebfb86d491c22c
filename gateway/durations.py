"""Durations written the short way ("90s", "30m", "48h", "21d", "2w", "1h30m") and back."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PATTERN = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_DIGITS = re.compile(r"[0-9]+")
_EXAMPLES = '"90s", "30m", "12h", "21d" or "1h30m"'
# Whole days below this are written in hours ("48h"), the way people say them.
_HOURS_UP_TO = 3 * 86400


def parse_duration(text: str | int) -> timedelta:
    """Read a duration; a bare whole number means seconds."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"{text!r} is not a duration; write it like {_EXAMPLES}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        seconds = text
    else:
        compact = "".join(text.split()).lower()
        match = _PATTERN.fullmatch(compact)
        if _DIGITS.fullmatch(compact):
            seconds = int(compact)
        elif compact and match is not None:
            seconds = sum(
                int(amount) * size
                for amount, (_, size) in zip(match.groups(), _UNITS, strict=True)
                if amount
            )
        else:
            raise ValueError(f'"{text}" is not a duration; write it like {_EXAMPLES}')
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f'"{text}" is too long to be a duration') from None


def format_duration(duration: timedelta) -> str:
    """The short form of a duration, to whole seconds: "48h", "21d", "1h30m", "0s"."""
    seconds = duration // timedelta(seconds=1)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS[1:]:
        if unit == "d" and seconds < _HOURS_UP_TO:
            continue
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def human_duration(value: timedelta) -> str:
    """For people: "48 hours", "3 days", "1 hour 30 minutes". Up to three days reads in hours."""
    seconds = int(value.total_seconds())
    if seconds >= 3 * 86400 and seconds % 86400 == 0:
        return _count(seconds // 86400, "day")
    if seconds >= 3600 and seconds % 3600 == 0:
        return _count(seconds // 3600, "hour")
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            parts.append(_count(seconds // size, unit))
            seconds %= size
    return " ".join(parts) or "0 seconds"


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def ago(seconds: float) -> str:
    """How long ago, as a person says it: "just now", "5 minutes ago", "3 hours ago",
    "yesterday", "12 days ago" (whole units, rounded down: never sooner than it was)."""
    whole = max(0, int(seconds))
    if whole < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if whole >= size:
            count = whole // size
            if unit == "day" and count == 1:
                return "yesterday"
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"  # pragma: no cover - the loop always returns
