"""The words of codes by text message, phone call and email: the labels and headings of their
pages, what a wrong, spent or refused code's page says, and the message that carries a code
(in the sign-in's language: gateway.i18n). Sending and checking: codes.py."""

from __future__ import annotations

from gateway.i18n import N_, gettext, ngettext
from gateway.policy.model import CodeLimits

SMS, VOICE, EMAIL = "sms", "voice", "email"
# marked for the catalogues; each page shows them in its language (gateway.pages)
LABELS = {SMS: N_("Text message (SMS)"), VOICE: N_("Phone call"), EMAIL: N_("Email")}
SEND_LABELS = {
    SMS: N_("Text me a code"),
    VOICE: N_("Call me with a code"),
    EMAIL: N_("Email me a code"),
}
HEADINGS = {
    SMS: N_("Enter the code we texted you"),
    VOICE: N_("Enter the code from our call"),
    EMAIL: N_("Enter the code we emailed you"),
}

WRONG_CODE = N_("That code is not right. Check the latest message and enter its 6 digits.")
WRONG_CALLED_CODE = N_("That code is not right. Enter the 6 digits read out in the latest call.")


def wrong_code_text(method: str) -> str:
    """What a wrong code's page says: a phone call has no message to check."""
    wrong = WRONG_CALLED_CODE if method == VOICE else WRONG_CODE
    return gettext(wrong)


def void_code_text(tries: int) -> str:
    return gettext(
        "That code was entered wrongly %(tries)s times and no longer works. Ask for a new code.",
        tries=tries,
    )


NO_CODE = N_(
    "There is no code waiting for this sign-in: it has expired, been "
    "used, or was not sent. Ask for a new code."
)


def sent_again_text(method: str, to: str) -> str:
    """The confirmation after "Send again": a new code replaces the one before it (a code is
    kept per sign-in and method, so the earlier code of this method no longer works)."""
    if method == VOICE:
        return gettext(
            "We called %(to)s again and read out a new code. Enter that code: codes read out "
            "before it no longer work.",
            to=to,
        )
    if method == SMS:
        return gettext(
            "A new code was texted to %(to)s. Enter that code: codes sent before it no longer "
            "work.",
            to=to,
        )
    return gettext(
        "A new code was emailed to %(to)s. Enter that code: codes sent before it no longer work.",
        to=to,
    )


def messages(method: str, code: str, site: str, limits: CodeLimits) -> tuple[str, str]:
    """(subject, text) of the message that carries the code, in the sign-in's language."""
    minutes = int(limits.valid_for.total_seconds()) // 60
    if method == SMS:
        return "", gettext(
            "%(code)s is your %(site)s sign-in code. It expires in %(minutes)s minutes. "
            "Do not give it to anyone.",
            code=code,
            site=site,
            minutes=minutes,
        )
    if method == VOICE:
        spoken = ", ".join(code)
        return "", gettext(
            "Your %(site)s sign-in code is: %(spoken)s. Again, your code is: %(spoken)s.",
            site=site,
            spoken=spoken,
        )
    body = "\n\n".join(
        (
            gettext("Your sign-in code for %(site)s is:", site=site),
            f"    {code}",
            gettext("It works once, for %(minutes)s minutes.", minutes=minutes),
            gettext(
                "If you did not just try to sign in, someone may know your password: change "
                "it, and tell your company's administrator."
            ),
        )
    )
    return gettext("Your %(site)s sign-in code", site=site), body + "\n"


def ago(seconds: float) -> str:
    whole = int(seconds)
    if whole < 1:
        return gettext("a moment ago")
    if whole < 120:
        return ngettext("%(num)s second ago", "%(num)s seconds ago", whole)
    return ngettext("%(num)s minute ago", "%(num)s minutes ago", whole // 60)


def still_works(method: str, to: str, ago: str) -> str:
    if method == VOICE:
        return gettext(
            "The code read out in our call to %(to)s %(ago)s still works: enter it below.",
            to=to,
            ago=ago,
        )
    if method == SMS:
        return gettext(
            "The code we texted to %(to)s %(ago)s still works: enter it below.", to=to, ago=ago
        )
    return gettext(
        "The code we emailed to %(to)s %(ago)s still works: enter it below.", to=to, ago=ago
    )


def cap_reached(method: str, count: int, to: str) -> str:
    if method == SMS:
        return ngettext(
            "%(num)s code has been texted to %(to)s in the last hour, the most we send.",
            "%(num)s codes have been texted to %(to)s in the last hour, the most we send.",
            count,
            to=to,
        )
    if method == VOICE:
        return ngettext(
            "%(num)s call has been made to %(to)s in the last hour, the most we send.",
            "%(num)s calls have been made to %(to)s in the last hour, the most we send.",
            count,
            to=to,
        )
    return ngettext(
        "%(num)s code has been emailed to %(to)s in the last hour, the most we send.",
        "%(num)s codes have been emailed to %(to)s in the last hour, the most we send.",
        count,
        to=to,
    )


def ask_again(method: str, minutes: int, other_ways: bool) -> str:
    if method == VOICE and other_ways:
        return ngettext(
            "You can ask for another call in %(num)s minute, or choose another way below.",
            "You can ask for another call in %(num)s minutes, or choose another way below.",
            minutes,
        )
    if method == VOICE:
        return ngettext(
            "You can ask for another call in %(num)s minute.",
            "You can ask for another call in %(num)s minutes.",
            minutes,
        )
    if other_ways:
        return ngettext(
            "You can ask for another in %(num)s minute, or choose another way below.",
            "You can ask for another in %(num)s minutes, or choose another way below.",
            minutes,
        )
    return ngettext(
        "You can ask for another in %(num)s minute.",
        "You can ask for another in %(num)s minutes.",
        minutes,
    )
