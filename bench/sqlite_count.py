"""`python -m bench.sqlite_count COUNT_FILE gateway-arguments...`: the gateway, with every SQL
statement its SQLite connections run counted (sqlite3's trace callback, set on each connection
this launcher's `sqlite3.connect` makes) and the count written to COUNT_FILE every 50 ms,
with the number of that write.

SQLite is a library, not a server: a "round trip" to it is a statement, run in the gateway's
own process. The gateway has no hook for counting them, and should not carry one, so this
benchmark-only launcher adds it from outside; the trace callback costs time, so a gateway
started this way is only ever used for counting, never for CPU figures.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    statements = [0]
    connect = sqlite3.connect

    def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)

        def trace(_sql: str) -> None:
            statements[0] += 1

        connection.set_trace_callback(trace)
        return connection

    sqlite3.connect = counted  # type: ignore[assignment]

    def write() -> None:  # whole lines only: a reader never sees a file being written
        written = 0
        partial = out.with_name(out.name + ".partial")
        while True:
            written += 1
            partial.write_text(f"{statements[0]} {written}\n")
            os.replace(partial, out)
            threading.Event().wait(0.05)

    threading.Thread(target=write, daemon=True).start()
    sys.argv = ["gateway", *argv[1:]]
    from gateway.cli import main as gateway

    return int(gateway() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
