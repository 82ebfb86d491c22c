"""What every sender shares: refusing the channels it does not serve."""

from __future__ import annotations

from gateway.senders import SendFailed


class ChannelSender:
    """A sender for some channels; the others raise SendFailed (settings keep them apart)."""

    async def send_sms(self, to: str, text: str) -> None:
        raise SendFailed(f"{type(self).__name__} does not send text messages")

    async def place_call(self, to: str, text: str) -> None:
        raise SendFailed(f"{type(self).__name__} does not place calls")

    async def send_email(self, to: str, subject: str, body: str) -> None:
        raise SendFailed(f"{type(self).__name__} does not send email")

    async def close(self) -> None:
        return None
