"""Phone numbers: E.164 and the line type for a UK mobile, a UK landline, a US number (fixed line
or mobile: unknown), and numbers that cannot be used."""

from __future__ import annotations

import pytest

from gateway.factors.phone import InvalidNumber, LineType, parse, valid_region


@pytest.mark.parametrize(
    ("typed", "region", "e164", "line_type"),
    [
        ("+44 7400 123456", "US", "+447400123456", LineType.MOBILE),
        ("07400 123456", "GB", "+447400123456", LineType.MOBILE),
        ("+44 20 7946 0000", "US", "+442079460000", LineType.FIXED_LINE),
        ("+1 201 555 0123", "GB", "+12015550123", LineType.UNKNOWN),
        ("(201) 555-0123", "US", "+12015550123", LineType.UNKNOWN),
        ("+1 416 555 0199", "US", "+14165550199", LineType.UNKNOWN),  # Canada: the same
    ],
)
def test_parsed_to_e164_with_line_type(
    typed: str, region: str, e164: str, line_type: LineType
) -> None:
    phone = parse(typed, region)
    assert (phone.e164, phone.line_type) == (e164, line_type)
    assert phone.ending == e164[-4:]
    assert phone.line_type.takes_sms is (line_type is LineType.MOBILE)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Enter a phone number."),
        ("hello", "not a phone number"),
        ("+1 12", "not valid"),
        ("+44 20 7946", "not valid"),
        ("9" * 50, "too long"),
        ("+1 800 555 0123", "toll-free or premium-rate"),
        ("+44 909 879 0000", "toll-free or premium-rate"),
    ],
)
def test_numbers_that_cannot_be_used_get_a_plain_message(typed: str, says: str) -> None:
    with pytest.raises(InvalidNumber, match=says):
        parse(typed, "US")


def test_regions() -> None:
    assert valid_region("US") and valid_region("gb")
    assert not valid_region("XX") and not valid_region("UK")
