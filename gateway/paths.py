"""Request path normalisation: the one path that access rules see and that is forwarded."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, unquote_to_bytes

from gateway.i18n import N_, Explained
from gateway.memo import remembered

# Encoded separators and NUL change meaning between the gateway and the application, so they
# are refused outright rather than guessed at.
_FORBIDDEN_ENCODED = ("%2f", "%5c", "%00")
_TWICE_ENCODED = ("%2e", "%2f", "%5c", "%00")  # still there once the path is decoded
_SAFE = "/:@!$&'()*+,;=-._~"
_DOTS = (".", "..")


class BadPath(Explained):
    """The request path cannot be normalised safely (the reason is on the 400 page)."""


def normalise_path(raw: str) -> str:
    """Decode once, resolve dot segments and collapse empty segments. A path that still
    encodes a dot, slash, backslash or NUL once decoded is refused.

    `raw` is the path as sent on the wire, without the query string.
    """
    if not raw.startswith("/"):
        raise BadPath(N_("the path must start with /"))
    lowered = raw.lower()
    for token in _FORBIDDEN_ENCODED:
        if token in lowered:
            raise BadPath(
                N_("the path contains the encoded character %(token)s"), token=repr(token)
            )
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPath(N_("the path is not valid UTF-8 once decoded")) from exc
    if "\\" in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise BadPath(N_("the path contains a backslash or a control character"))
    if "%" in decoded:
        still = decoded.lower()
        for token in _TWICE_ENCODED:
            if token in still:
                # an application that decodes again would read a dot, slash, backslash or NUL
                # the rules never saw ("/public/%252e%252e/admin" is /admin to it)
                raise BadPath(
                    N_("the path is encoded twice (%(token)s once decoded)"), token=repr(token)
                )
    parts = decoded.split("/")[1:]
    for part in parts:
        _check_segment(part)
    return resolved(parts, trailing_slash=parts[-1] in ("", ".", ".."))


def resolved(segments: Iterable[str], trailing_slash: bool) -> str:
    """An absolute path of these segments with empty and "." segments dropped and each ".."
    taking the one before it away; a final "/" when asked and anything is left."""
    kept: list[str] = []
    for part in segments:
        if part in ("", "."):
            continue
        if part == "..":
            if kept:
                kept.pop()
            continue
        kept.append(part)
    return "/" + "/".join(kept) + ("/" if trailing_slash and kept else "")


def _check_segment(part: str) -> None:
    """Refuse a segment that an application server may read as a dot segment or a separator
    where the gateway does not: `..;x` (Tomcat, Jetty and Spring drop path parameters before
    resolving dot segments), or fullwidth dots and slashes that become `..` or `/` under
    Unicode compatibility folding (IIS "best fit", NFKC in some frameworks)."""
    if part not in _DOTS and part.split(";", 1)[0] in _DOTS:
        raise BadPath(N_("a dot segment carries path parameters"))
    if part.isascii():
        return
    folded = unicodedata.normalize("NFKC", part)
    if "/" in folded or "\\" in folded or folded.split(";", 1)[0] in _DOTS:
        raise BadPath(
            N_("the path contains a character that folds to a dot segment or a separator")
        )


@remembered(entries=1024, longest=512)  # the same paths come again and again
def encode_path(path: str) -> str:
    """Re-encode a normalised path for the upstream request line."""
    return quote(path, safe=_SAFE)
