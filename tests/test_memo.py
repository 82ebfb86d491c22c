"""gateway.memo: answers remembered within a bound, never for long keys or exceptions."""

from __future__ import annotations

import pytest

from gateway.memo import remembered


def test_answers_are_remembered_within_the_bound() -> None:
    calls: list[str] = []

    @remembered(entries=3, longest=5)
    def shout(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert [shout("a"), shout("a"), shout("b")] == ["A", "A", "B"]
    assert calls == ["a", "b"]
    shout("c")
    shout("d")  # the memo was full: it starts again
    shout("a")
    assert calls == ["a", "b", "c", "d", "a"]


def test_long_keys_and_exceptions_are_not_kept() -> None:
    calls: list[str] = []

    @remembered(entries=10, longest=3)
    def check(text: str) -> str:
        calls.append(text)
        if text == "bad":
            raise ValueError(text)
        return text

    check("long text")
    check("long text")
    for _ in range(2):
        with pytest.raises(ValueError):
            check("bad")
    assert calls == ["long text", "long text", "bad", "bad"]


def test_none_is_an_answer_like_any_other() -> None:
    calls: list[str] = []

    @remembered(entries=10, longest=10, size=lambda key: len(key[0]))
    def nothing(key: tuple[str, int]) -> None:
        calls.append(key[0])

    nothing(("x", 1))
    nothing(("x", 1))
    assert calls == ["x"]
