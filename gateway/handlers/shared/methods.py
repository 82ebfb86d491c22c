"""The second-factor methods the gateway can offer, each with its enrolment and challenge pages.

A method's module in handlers/signin/ (totp, the code methods, passkeys, recovery) registers a
`MethodPages` when it is imported; the dispatcher (signin/second_factor.py, which imports them)
asks gateway.signin.methods which one a page shows (the `method` query parameter, the company's
default, or what the user has enrolled) and lists the others as "another way".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.policy.model import Company
from gateway.runtime import Runtime
from gateway.sessions import Session
from gateway.signin import methods

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


def offered(runtime: Runtime) -> list[str]:
    """The methods this gateway has pages for and can deliver (a sender set up, say)."""
    return [name for name, pages in REGISTRY.items() if pages.available(runtime)]


def enrolled_alone() -> list[str]:
    """Methods with an enrolment page of their own (not recovery codes)."""
    return [name for name, pages in REGISTRY.items() if pages.enrol_get is not None]


def allowed(company: Company | None, runtime: Runtime) -> list[str]:
    """gateway.signin.methods.allowed, for what this gateway offers."""
    return methods.allowed(company, offered(runtime))


def enrollable(company: Company | None, runtime: Runtime) -> list[str]:
    return methods.enrollable(company, offered(runtime), enrolled_alone())


def usable(enrolled: list[str], company: Company | None, runtime: Runtime) -> list[str]:
    return methods.usable(enrolled, company, offered(runtime))
