"""Security events as one JSON line each, on the `gateway.audit` logger.

Where the lines go (stdout, a file) is logging configuration; the event names are stable.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger("gateway.audit")


def audit(event: str, **fields: Any) -> None:
    record = {"time": round(time.time(), 3), "event": event}
    record.update({key: value for key, value in fields.items() if value is not None})
    log.info(json.dumps(record, default=str, separators=(",", ":")))
