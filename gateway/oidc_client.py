"""The gateway's requests to an OpenID provider (portal mode's `oidc:`): the discovery document
and the signing keys (JWKS), each fetched once and kept, the keys fetched again when a token names
one not seen yet (the provider rotated them), and the exchange of an authorization code for the
tokens. One fetch of each at a time: requests that need it meanwhile wait for its answer, and a
failure with nothing kept is remembered FAILURE_PAUSE seconds, so a crowd at the login page of a
provider that is down (or slow to say so) is one request to it, not one per visit in a queue.
A provider that cannot be reached, or answers nonsense, raises ProviderError (the handlers show
the 503 page: nobody is let in); an answer refused raises AnswerRefused. The rules are
gateway.identity.oidc and gateway.identity.oidc_token; this module only fetches."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from urllib.parse import quote_plus

import aiohttp
from joserfc.jwk import KeySet

from gateway.identity.oidc import (
    BASIC,
    AnswerRefused,
    Attempt,
    Discovery,
    ProviderError,
    parse_discovery,
)
from gateway.identity.oidc_token import Expected, UnknownKey, check_id_token, read_keys
from gateway.settings import Settings
from gateway.settings.oidc import Oidc

log = logging.getLogger("gateway.oidc")

DISCOVERY_PATH = "/.well-known/openid-configuration"
KEEP_DISCOVERY = 3600.0  # seconds the discovery document is kept before it is fetched again
RETRY_DISCOVERY = 60.0  # seconds before a failed refresh of the discovery document is tried again
KEYS_REFETCH_PAUSE = 10.0  # at most one fetch of the keys this often, whatever the tokens name
MAX_ANSWER = 256 * 1024  # bytes read of any answer of the provider
FAILURE_PAUSE = 5.0  # seconds a failed fetch with nothing kept is answered from memory

T = TypeVar("T")


class _OneAtATime(Generic[T]):
    """One fetch running at a time: a caller that comes while it runs waits for its outcome
    (shielded: a caller that goes away does not cancel it for the others); a failure, when
    there is nothing to fall back on, is remembered FAILURE_PAUSE seconds and given at once."""

    def __init__(self) -> None:
        self._running: asyncio.Future[T] | None = None
        self._failed: tuple[float, str] | None = None  # when, and what

    async def run(self, fetch: Callable[[], Awaitable[T]]) -> T:
        if self._failed is not None:
            at, what = self._failed
            if time.monotonic() - at < FAILURE_PAUSE:
                raise ProviderError(f"{what} (failed {time.monotonic() - at:.1f}s ago)")
        if self._running is None:
            running = asyncio.ensure_future(self._outcome(fetch))
            self._running = running
            running.add_done_callback(self._over)
        return await asyncio.shield(self._running)

    async def _outcome(self, fetch: Callable[[], Awaitable[T]]) -> T:
        try:
            found = await fetch()
        except ProviderError as exc:
            self._failed = (time.monotonic(), str(exc))
            raise
        self._failed = None
        return found

    def _over(self, running: asyncio.Future[T]) -> None:
        if self._running is running:
            self._running = None
        if not running.cancelled():
            running.exception()  # retrieved: nobody may be waiting any more

    def cancel(self) -> None:
        if self._running is not None:
            self._running.cancel()


class OidcClient:
    """One application's provider. Made before the server starts (no I/O); `start()` fetches
    the discovery document once the gateway runs, without holding it up."""

    def __init__(self, settings: Oidc, client_secret: str) -> None:
        self.settings = settings
        self._secret = client_secret
        self._session: aiohttp.ClientSession | None = None
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = float("-inf")  # when the keys were last fetched, or tried
        self._discovering: _OneAtATime[Discovery] = _OneAtATime()
        self._fetching_keys: _OneAtATime[KeySet] = _OneAtATime()
        self._warming: asyncio.Task[None] | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        return self._session

    async def start(self) -> None:
        """The discovery document fetched in the background: a provider slow or down at start
        delays no other application (its sign-ins meet the 503 page until it answers)."""
        self._warming = asyncio.create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self.discovery()
        except ProviderError as exc:
            log.warning("OpenID provider %s not ready at start: %s", self.settings.issuer, exc)

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
            self._warming = None
        self._discovering.cancel()
        self._fetching_keys.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._http().get(url, allow_redirects=False) as answer:
                body = await answer.content.read(MAX_ANSWER + 1)
                if answer.status != 200:
                    raise ProviderError(f"{what} answered {answer.status}")
                if len(body) > MAX_ANSWER:
                    raise ProviderError(f"{what} is too large")
                return _json(body, what)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ProviderError(f"{what} unreachable: {type(exc).__name__} {exc}") from None

    async def discovery(self) -> Discovery:
        now = time.monotonic()
        if self._discovery is not None and now - self._discovered_at < KEEP_DISCOVERY:
            return self._discovery
        return await self._discovering.run(self._discover)

    async def _discover(self) -> Discovery:
        url = self.settings.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            data = await self._get_json(url, "the discovery document")
            found = parse_discovery(data, self.settings.issuer)
        except ProviderError as exc:
            if self._discovery is None:
                raise
            # the last good document serves a while more; the requests it leads to fail on
            # their own if the provider is really gone
            log.warning("discovery document kept, the new one failed: %s", exc)
            self._discovered_at = time.monotonic() - KEEP_DISCOVERY + RETRY_DISCOVERY
            return self._discovery
        self._discovery, self._discovered_at = found, time.monotonic()
        return found

    async def keys(self, discovery: Discovery, refetch: bool = False) -> KeySet:
        fresh = time.monotonic() - self._keys_at < KEYS_REFETCH_PAUSE
        if self._keys is not None and (not refetch or fresh):
            return self._keys
        return await self._fetching_keys.run(lambda: self._fetch_keys(discovery))

    async def _fetch_keys(self, discovery: Discovery) -> KeySet:
        self._keys_at = time.monotonic()  # a fetch again waits its pause, answered or not
        data = await self._get_json(discovery.jwks_uri, "the provider's keys (JWKS)")
        try:
            keys = read_keys(data)
        except ValueError as exc:
            raise ProviderError(str(exc)) from None
        self._keys = keys
        return keys

    async def exchange(self, code: str, attempt: Attempt) -> dict[str, Any]:
        """The token endpoint's answer for `code` (with the attempt's PKCE verifier)."""
        discovery = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": attempt.redirect_uri,
            "code_verifier": attempt.verifier,
        }
        headers = {"Accept": "application/json"}
        if discovery.token_auth == BASIC:
            headers["Authorization"] = basic_auth(self.settings.client_id, self._secret)
        else:
            form |= {"client_id": self.settings.client_id, "client_secret": self._secret}
        try:
            async with self._http().post(
                discovery.token_endpoint, data=form, headers=headers, allow_redirects=False
            ) as answer:  # fmt: skip
                body = await answer.content.read(MAX_ANSWER + 1)
                status = answer.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ProviderError(f"the token endpoint unreachable: {type(exc).__name__}") from None
        if status >= 500 or len(body) > MAX_ANSWER:
            raise ProviderError(f"the token endpoint answered {status}")
        data = _json(body, "the token answer")
        if status != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            raise AnswerRefused(f"the token endpoint refused the code ({status} {error})")
        return data

    async def id_token_claims(self, token: Any, nonce: str, now: float) -> dict[str, Any]:
        discovery = await self.discovery()
        expected = Expected(
            issuer=discovery.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            algorithms=discovery.algorithms,
            skew=self.settings.clock_skew,
            max_age=self.settings.max_age,
        )
        try:
            return check_id_token(token, await self.keys(discovery), expected, now)
        except UnknownKey:
            keys = await self.keys(discovery, refetch=True)
        try:
            return check_id_token(token, keys, expected, now)
        except UnknownKey:
            raise AnswerRefused("the ID token names a key the provider does not publish") from None


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 section 2.3.1: the client id and secret, each form-encoded, inside Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderError(f"{what} is not JSON") from None


def oidc_clients(settings: Settings) -> dict[str, OidcClient]:
    """The portal-mode applications' OpenID providers, by application name; each client secret
    read now, so a missing one stops the start."""
    return {
        application.name: OidcClient(
            application.portal.oidc, application.portal.oidc.client_secret.read()
        )
        for application in settings.applications
        if application.portal is not None and application.portal.oidc is not None
    }
