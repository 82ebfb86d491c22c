"""Which HTTP parser reads requests: the gateway starts only on aiohttp's compiled one (llhttp),
which refuses the ambiguous framing gateway.protocol relies on it refusing, unless told
otherwise."""

from __future__ import annotations

import logging
import os

from aiohttp import http, http_parser

from gateway.settings import SettingsError

log = logging.getLogger("gateway.protocol")  # the edge's log, where these lines always were

ALLOW_PYTHON_PARSER = "GATEWAY_ALLOW_PYTHON_PARSER"


def compiled_parser() -> bool:
    """Whether aiohttp reads requests with its compiled parser (llhttp), not the pure-Python
    fallback it uses under AIOHTTP_NO_EXTENSIONS or without its C extension."""
    return http.HttpRequestParser is not http_parser.HttpRequestParserPy


def check_parser() -> None:
    """Log which HTTP parser is in use; refuse to start on the pure-Python one unless
    GATEWAY_ALLOW_PYTHON_PARSER=1 says to, and then warn."""
    if compiled_parser():
        log.info("HTTP requests are parsed by aiohttp's compiled parser (llhttp)")
        return
    why = (
        "AIOHTTP_NO_EXTENSIONS is set"
        if os.environ.get("AIOHTTP_NO_EXTENSIONS")
        else "aiohttp's compiled extension is not installed for this Python"
    )
    if os.environ.get(ALLOW_PYTHON_PARSER) == "1":
        log.warning(
            "HTTP requests are parsed by aiohttp's pure-Python parser (%s), slower and less "
            "tried against request smuggling than the compiled one; running anyway because "
            "%s=1",
            why,
            ALLOW_PYTHON_PARSER,
        )
        return
    raise SettingsError(
        f"aiohttp would parse HTTP with its pure-Python parser ({why}). The gateway only "
        "starts on the compiled parser: install aiohttp's binary wheel for this Python and "
        f"unset AIOHTTP_NO_EXTENSIONS, or set {ALLOW_PYTHON_PARSER}=1 to run anyway"
    )
