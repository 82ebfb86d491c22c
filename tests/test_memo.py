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


def test_answers_much_larger_than_their_key_are_not_kept() -> None:
    """`keep` refuses an answer: a client's small key must not pin a large answer."""
    calls: list[str] = []

    @remembered(entries=10, longest=100, keep=lambda parts: len(parts) <= 2)
    def split(text: str) -> tuple[str, ...]:
        calls.append(text)
        return tuple(text.split(";"))

    split("a;b")
    split("a;b")
    split("a;b;c")
    split("a;b;c")
    assert calls == ["a;b", "a;b;c", "a;b;c"]


def test_the_cookie_memo_keeps_only_a_browsers_sized_header() -> None:
    """A header of a thousand tiny cookies is parsed each time, not kept (review finding: 1,023
    such 4 KB headers pinned 110 MB); a browser's is kept."""
    from gateway.context import _parsed

    many = "; ".join(f"c{i}=" for i in range(500))
    assert _parsed(many) is not _parsed(many)
    usual = "session=abc; theme=dark"
    assert _parsed(usual) is _parsed(usual)
