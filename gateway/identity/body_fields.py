"""The field names (and text values) a request body holds, read the loose way frameworks read
them, for checks that must see every field some application might: which request is the login
(`login.fields`), and credentials that belong in the login only (`credentials.fields`)."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote, unquote_plus

import multipart  # type: ignore[import-untyped]

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


class UnreadableBody(ValueError):
    """A form-like body that cannot be read at all: it is not passed on unread."""


_CUT = re.compile(r"[;,\s]")  # PHP ends a media type at ";", "," or a space
_CHARSET = re.compile(r"charset\s*=\s*\"?([^\";,\s]*)", re.IGNORECASE)


def media_type(content_type: str | None) -> str:
    return _CUT.split((content_type or "").strip(), maxsplit=1)[0].lower()


def _check_type(content_type: str | None) -> None:
    """A form-like body the gateway reads as the application would: UTF-8 only (Node's
    body-parser also reads utf-16 and utf-7 JSON), one boundary (PHP takes the first, the
    multipart package the last)."""
    text = content_type or ""
    for charset in _CHARSET.findall(text):
        if charset.lower() != "utf-8":
            raise UnreadableBody(f"the body is sent in the charset {charset!r}, not UTF-8")
    if media_type(text) == MULTIPART and len(re.findall("boundary", text, re.IGNORECASE)) != 1:
        raise UnreadableBody("the multipart Content-Type names its boundary more than once")


def is_form_like(content_type: str | None) -> bool:
    """Bodies an application framework turns into fields (PHP: form and multipart; many read
    JSON too)."""
    kind = media_type(content_type)
    return kind in (FORM, MULTIPART) or kind == "application/json" or kind.endswith("+json")


def body_fields(content_type: str | None, body: bytes) -> list[tuple[str, str]]:
    """Every (name, value) the body may be read as; names under each decoding. Non-text values
    of JSON come as their JSON text. Raises UnreadableBody for a form-like body that cannot be
    read."""
    kind = media_type(content_type)
    if is_form_like(content_type):
        _check_type(content_type)
    if kind == FORM:
        return _form(body.decode("utf-8", "replace"))
    if kind == MULTIPART:
        return _multipart(content_type or "", body)
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(body.decode("utf-8", "replace") or "{}")
        except (ValueError, RecursionError) as exc:
            raise UnreadableBody(f"the JSON body cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            return []
        return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]
    return []


def query_fields(query: str) -> list[tuple[str, str]]:
    return _form(query)


def _form(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for pair in text.replace(";", "&").split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        for decode in (unquote_plus, unquote):
            found.append((decode(key), decode(value)))
    return list(dict.fromkeys(found))


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise UnreadableBody("the multipart body has no boundary")
    found: list[tuple[str, str]] = []
    try:
        parser = multipart.PushMultipartParser(boundary, strict=False)
        name, value = None, bytearray()
        for event in parser.parse(body):
            if isinstance(event, multipart.MultipartSegment):
                name, value = event.name, bytearray()
            elif event is None:
                if name is not None:
                    found.append((str(name), value[:4096].decode("utf-8", "replace")))
                name = None
            elif isinstance(event, bytes | bytearray) and name is not None:
                value.extend(event[: 4096 - len(value)] if len(value) < 4096 else b"")
        parser.close()
    except multipart.MultipartError as exc:
        raise UnreadableBody(f"the multipart body cannot be read: {exc}") from exc
    return found
