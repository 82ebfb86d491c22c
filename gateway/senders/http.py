"""SMS and voice calls over HTTP: a Twilio-compatible provider API, or a JSON webhook of yours."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import aiohttp

from gateway.senders import SendFailed
from gateway.senders.base import ChannelSender


class _HttpSender(ChannelSender):
    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _post(self, url: str, what: str, **kwargs: Any) -> None:
        try:
            async with self._client().post(url, **kwargs) as response:
                if response.status >= 300:
                    detail = (await response.text())[:200]
                    raise SendFailed(f"{what}: {url} answered {response.status}: {detail}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SendFailed(f"{what}: {url} could not be reached: {exc!r}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpProviderSender(_HttpSender):
    """Twilio's REST API shape: form-encoded POSTs with HTTP basic authentication (account SID
    and auth token), to Messages.json for SMS and Calls.json (with TwiML) for calls."""

    def __init__(
        self, base_url: str, account_sid: str, auth_token: str, sender: str, timeout: float = 10.0
    ) -> None:
        super().__init__(timeout)
        self._account = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}"
        self._auth = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self._from = sender

    async def send_sms(self, to: str, text: str) -> None:
        form = {"To": to, "From": self._from, "Body": text}
        await self._post(f"{self._account}/Messages.json", "sms", data=form, headers=self._auth)

    async def place_call(self, to: str, text: str) -> None:
        twiml = f"<Response><Say>{escape(text)}</Say></Response>"
        form = {"To": to, "From": self._from, "Twiml": twiml}
        await self._post(f"{self._account}/Calls.json", "voice call", data=form, headers=self._auth)


class WebhookSender(_HttpSender):
    """POSTs {"channel": "sms" | "voice", "to": "+44...", "text": "..."} as JSON, with an
    optional bearer token; any 2xx answer means the message was taken."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        super().__init__(timeout)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send_sms(self, to: str, text: str) -> None:
        await self._send("sms", to, text)

    async def place_call(self, to: str, text: str) -> None:
        await self._send("voice", to, text)

    async def _send(self, channel: str, to: str, text: str) -> None:
        body = {"channel": channel, "to": to, "text": text}
        await self._post(self._url, channel, json=body, headers=self._headers)
