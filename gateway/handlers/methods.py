"""The second-factor methods the gateway can offer, each with its enrolment and challenge pages.

A method module (totp, codes, webauthn, recovery) registers a `MethodPages`; the dispatcher in
`second_factor` picks one by the `method` query parameter, the company's default, or what the
user has enrolled, and lists the others as "another way".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.policy.model import METHODS, Company
from gateway.runtime import Runtime
from gateway.sessions import Session

Page = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
Post = Callable[[web.Request, Session, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class MethodPages:
    name: str  # as in policy files: totp, webauthn, sms, voice, email, recovery
    label: str  # "Authenticator app", shown in "another way" lists
    challenge_get: Page
    challenge_post: Post
    enrol_get: Page | None = None  # None: not enrolled on its own (recovery codes)
    enrol_post: Post | None = None
    available: Callable[[Runtime], bool] = lambda runtime: True  # e.g. a sender is configured


REGISTRY: dict[str, MethodPages] = {}


def register(pages: MethodPages) -> None:
    REGISTRY[pages.name] = pages


def allowed(company: Company | None, runtime: Runtime) -> list[str]:
    """The methods this user may use, in policy order: the company's list (all, for users of no
    company), restricted to what this gateway has and can deliver."""
    names = company.methods if company is not None else METHODS
    return [n for n in names if n in REGISTRY and REGISTRY[n].available(runtime)]


def enrollable(company: Company | None, runtime: Runtime) -> list[str]:
    return [n for n in allowed(company, runtime) if REGISTRY[n].enrol_get is not None]


def usable(enrolled: list[str], company: Company | None, runtime: Runtime) -> list[str]:
    """Enrolled methods the policy still allows, in the policy's order."""
    return [n for n in allowed(company, runtime) if n in enrolled]


def preferred(options: list[str], company: Company | None) -> str | None:
    """The company's default method when it is among the options, else the first option;
    recovery codes only when nothing else is left (they are for a lost device)."""
    if company is not None and company.default_method in options:
        return company.default_method
    ordered = [name for name in options if name != "recovery"] or options
    return ordered[0] if ordered else None
