"""Recovery codes without I/O: how they look, what people may type, how they are kept."""

from __future__ import annotations

import json
import math
import re

import pytest

from gateway.factors import recovery

CODE_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")


@pytest.fixture(scope="module")
def made() -> recovery.CodeSet:
    return recovery.generate(now=1_700_000_000.0)


def test_a_set_has_ten_distinct_codes_in_the_shown_format(made: recovery.CodeSet) -> None:
    """Ten codes, all different, each xxxxx-xxxxx from Crockford's base32."""
    assert len(made.codes) == recovery.COUNT == 10
    assert len(set(made.codes)) == 10
    assert all(CODE_RE.match(code) for code in made.codes), made.codes


def test_each_code_carries_at_least_50_random_bits() -> None:
    """The alphabet and length give 50 bits, and codes drawn in bulk do not repeat."""
    assert len(set(recovery.ALPHABET)) ** recovery.LENGTH >= 2**50
    assert math.log2(len(recovery.ALPHABET)) * recovery.LENGTH >= 50
    many = {recovery.new_code() for _ in range(2000)}
    assert len(many) == 2000
    assert set("".join(many).replace("-", "")) == set(recovery.ALPHABET)


def test_the_record_keeps_hashes_only(made: recovery.CodeSet) -> None:
    """No code, with or without its dash, appears in the stored record, which is plain JSON."""
    text = json.dumps(made.record)
    for code in made.codes:
        assert code not in text and code.replace("-", "") not in text
    assert len(made.record["codes"]) == 10 and len(set(made.record["codes"])) == 10
    assert made.record["created"] == 1_700_000_000.0
    assert made.record["kdf"]["name"] == "argon2id"
    assert recovery.remaining(made.record) == 10


def test_two_sets_hash_the_same_code_differently() -> None:
    """Each set has its own salt: equal codes in two sets do not give equal hashes."""
    first, second = recovery.generate(0.0, count=1), recovery.generate(0.0, count=1)
    assert first.record["salt"] != second.record["salt"]
    assert first.record["codes"] != second.record["codes"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("abcde-12345", "abcde12345"),
        ("ABCDE12345", "abcde12345"),
        ("  abc de - 123 45 ", "abcde12345"),
        ("abcde_12345", "abcde12345"),
        ("0ab1c-d2e3f", "0ab1cd2e3f"),
        ("oabic-d2e3f", "0ab1cd2e3f"),  # o reads as 0, i and l as 1
        ("OABLC-D2E3F", "0ab1cd2e3f"),
        ("abcde-1234", None),  # too short
        ("abcde-123456", None),  # too long
        ("abcde-1234u", None),  # u is not in the alphabet
        ("abcde-1234!", None),
        ("", None),
    ],
)
def test_normalise_forgives_case_spaces_dashes_and_lookalikes(
    typed: str, expected: str | None
) -> None:
    """What people type is read as the code it must be, or refused as no code at all."""
    assert recovery.normalise(typed) == expected


def test_each_code_matches_its_own_hash(made: recovery.CodeSet) -> None:
    """Every code, as shown or typed loosely, matches the hash stored for it and no other."""
    matched = [recovery.match(made.record, code) for code in made.codes]
    assert matched == made.record["codes"]
    loose = made.codes[3].upper().replace("-", " ")
    assert recovery.match(made.record, loose) == made.record["codes"][3]


def test_other_codes_match_nothing(made: recovery.CodeSet) -> None:
    """A code of another set, a malformed code and an empty one match nothing."""
    other = recovery.generate(0.0, count=1).codes[0]
    assert recovery.match(made.record, other) is None
    assert recovery.match(made.record, "not a code") is None
    assert recovery.match(made.record, "") is None
    assert recovery.match({"codes": []}, made.codes[0]) is None


def test_a_spent_code_matches_no_more(made: recovery.CodeSet) -> None:
    """Once spent (removed from the record), a code no longer matches; the others still do."""
    used = recovery.match(made.record, made.codes[0])
    assert used is not None
    left = recovery.without(made.record, used)
    assert recovery.remaining(left) == 9
    assert recovery.match(left, made.codes[0]) is None
    assert recovery.match(left, made.codes[1]) == made.record["codes"][1]
    assert left["salt"] == made.record["salt"] and left["created"] == made.record["created"]
    assert recovery.remaining(made.record) == 10  # the original is not changed


def test_an_unknown_hash_kind_is_refused(made: recovery.CodeSet) -> None:
    bad = dict(made.record, kdf={"name": "md5"})
    with pytest.raises(ValueError, match="unknown recovery-code hash"):
        recovery.match(bad, made.codes[0])
