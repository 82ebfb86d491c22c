"""The development sender: each message appended to a file as one JSON line, and logged."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from gateway.senders import SendFailed

log = logging.getLogger("gateway.outbox")


class OutboxSender:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def send_sms(self, to: str, text: str) -> None:
        await self._write({"channel": "sms", "to": to, "text": text})

    async def place_call(self, to: str, text: str) -> None:
        await self._write({"channel": "voice", "to": to, "text": text})

    async def send_email(self, to: str, subject: str, body: str) -> None:
        await self._write({"channel": "email", "to": to, "subject": subject, "text": body})

    async def close(self) -> None:
        return None

    async def _write(self, message: dict[str, object]) -> None:
        line = json.dumps({"time": round(time.time(), 3), **message}, ensure_ascii=False)
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            raise SendFailed(f"outbox: cannot write {self.path}: {exc.strerror}") from exc
        text = " | ".join(str(message["text"]).splitlines())
        log.info("outbox: %s to %s: %s", message["channel"], message["to"], text)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
