"""Phone numbers for SMS and voice codes: parsed to E.164 and sorted by line type.

A mobile number can take text messages; a fixed line only a call (and its owner is better off
with an authenticator app); where the numbering plan does not tell the two apart (US and
Canadian numbers are "fixed line or mobile") the type is unknown and the user is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import phonenumbers
from phonenumbers import PhoneNumberType

DEFAULT_REGION = "US"


class LineType(Enum):
    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    UNKNOWN = "unknown"  # fixed line or mobile, VoIP, personal numbers: cannot be known

    @property
    def takes_sms(self) -> bool:
        return self is LineType.MOBILE


class InvalidNumber(ValueError):
    """The number cannot be used; the message is a plain sentence for the user."""


_TYPES = {
    PhoneNumberType.MOBILE: LineType.MOBILE,
    PhoneNumberType.FIXED_LINE: LineType.FIXED_LINE,
}
_REFUSED = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST,
}


@dataclass(frozen=True)
class Phone:
    e164: str
    line_type: LineType

    @property
    def ending(self) -> str:
        """The last digits, for "the number ending in 3456"."""
        return self.e164[-4:]


def parse(text: str, default_region: str = DEFAULT_REGION) -> Phone:
    """A number as typed ("+44 7400 123456", "(201) 555-0123" in the default region)."""
    text = text.strip()
    if not text:
        raise InvalidNumber("Enter a phone number.")
    if len(text) > 40:
        raise InvalidNumber("That is too long to be a phone number.")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidNumber(
            "That is not a phone number we can use. Enter it with its country code, "
            "for example +44 7400 123456."
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(
            "That phone number is not valid. Check the digits and the country code, "
            "for example +44 7400 123456."
        )
    kind = phonenumbers.number_type(number)
    if kind in _REFUSED:
        raise InvalidNumber(
            "Codes cannot be sent to toll-free or premium-rate numbers. Enter your own "
            "mobile or landline number."
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164, _TYPES.get(kind, LineType.UNKNOWN))


def valid_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS
