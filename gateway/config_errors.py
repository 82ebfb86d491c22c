"""What a problem in a configuration file becomes: a ConfigError names the file, the line and
what is wrong (one line of readable length, whatever the file quoted); ConfigInvalid carries every
error found, so a person fixes a file in one pass."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_MAX_MESSAGE = 400  # characters of one error message


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int
    message: str

    def __post_init__(self) -> None:
        # A message quotes values from the file: one line each, of a readable length, whatever
        # the file holds (a newline in a quoted value must not forge a second error line).
        message = "".join(
            repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
            for c in self.message[: _MAX_MESSAGE + 100]
        )
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        object.__setattr__(self, "message", message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigInvalid(Exception):
    """One or more configuration files are wrong; `errors` lists every problem found."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))
