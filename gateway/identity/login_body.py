"""Strict reading of an intercepted login body, and its canonical re-serialisation.

PHP, servlets, Django, Node and ASP.NET read ambiguous bodies differently, which would let the
gateway see one user while the application signs in another. So the body is read strictly, every
known ambiguity is refused, and what goes upstream is a re-serialisation of exactly what was read.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode

import multipart  # type: ignore[import-untyped]

if not hasattr(multipart, "PushMultipartParser"):  # python-multipart installs a `multipart` shim
    raise ImportError("the gateway needs the 'multipart' package, not python-multipart's shim")

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_BODY = 256 * 1024
MAX_FIELDS = 200
MAX_USERNAME = 320

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA = re.compile(rf"[ \t]*({_TCHARS}/{_TCHARS})")
_DISPOSITION = re.compile(rf"[ \t]*({_TCHARS})")
_PARAM = re.compile(rf"[ \t]*;[ \t]*({_TCHARS})=({_TCHARS}|\"[^\"]*\")")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_JSON_TYPE = re.compile(r"application/(?:json|[^/]+\+json)")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FORM_RAW = re.compile(r"[^!-~]|;")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PART_HEADER = re.compile(rb"(?i:content-disposition|content-type):")
_MANGLED = str.maketrans({".": "_", " ": "_", "[": "_"})


class UnreadableLogin(ValueError):
    """Why the login cannot be read unambiguously (the message is for the operator's log)."""


@dataclass(frozen=True)
class LoginBody:
    """A login body as the gateway read it, and the bytes to forward in its place."""

    media_type: str
    fields: Mapping[str, object]
    body: bytes
    content_type: str

    def text(self, field: str) -> str | None:
        """The field's value when it is a string, else None."""
        value = self.fields.get(field)
        return value if isinstance(value, str) else None


def field_reading(name: str) -> str:
    """The key under which common frameworks may read a field name: PHP drops leading spaces,
    reads `a[]`/`a[b]` as the array `a` and turns `.`, ` ` and an unclosed `[` into `_`;
    ASP.NET compares names without regard to case; PHP ends a name at NUL. Two names with one
    reading are ambiguous."""
    key = name.split("\x00", 1)[0].lstrip().casefold()
    bracket = key.find("[")
    if bracket >= 0 and "]" in key[bracket + 1 :]:
        key = key[:bracket]
    return key.translate(_MANGLED)


def read_login(
    content_type: str | None, body: bytes, query: str, *, username_field: str | None
) -> LoginBody:
    """Read a login body strictly; raise UnreadableLogin on anything ambiguous. `query` is the
    request's raw (still percent-encoded) query string."""
    if not content_type or not content_type.strip(" \t"):
        raise UnreadableLogin("the login request has no Content-Type")
    if len(body) > MAX_BODY:
        raise UnreadableLogin(f"the login body is larger than {MAX_BODY} bytes")
    media, params, _ = _header_params(content_type, _MEDIA, "Content-Type")
    if media not in (FORM, MULTIPART) and not _JSON_TYPE.fullmatch(media):
        raise UnreadableLogin(f"a login sent as {media!r} is not read")
    charset = _params(params, media, {"boundary"} if media == MULTIPART else set())
    if body.startswith(b"\xef\xbb\xbf"):
        raise UnreadableLogin("the login body starts with a byte order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableLogin(f"the login body is not valid UTF-8: {exc}") from exc
    fields: Mapping[str, object]
    if media == FORM:
        pairs = _read_form(text)
        fields = _unique(pairs)
        canonical = urlencode(pairs, quote_via=quote, safe="").encode("ascii")
        upstream = FORM
    elif media == MULTIPART:
        boundary = params.get("boundary", "")
        if not _BOUNDARY.fullmatch(boundary):
            raise UnreadableLogin(f"the multipart boundary {boundary!r} is missing or not RFC 2046")
        pairs = _read_multipart(body, boundary)
        fields = _unique(pairs)
        fresh, canonical = _multipart_body(pairs)
        upstream = f"{MULTIPART}; boundary={fresh}"
    else:
        fields = _read_json(text)
        canonical = _json_body(fields)
        upstream = media
    if charset:
        upstream += "; charset=utf-8"
    if username_field is not None:
        _check_username(fields, username_field)
    _check_query(query, fields)
    return LoginBody(media, MappingProxyType(dict(fields)), canonical, upstream)


def _header_params(
    value: str, head: re.Pattern[str], what: str
) -> tuple[str, dict[str, str], set[str]]:
    """RFC 9110 `type *( OWS ";" OWS name=value )`: the type, the parameters (names in lower
    case, values unquoted) and which were quoted. No empty or repeated parameter, no backslash
    escape in a quoted string (frameworks disagree on them)."""
    if "\\" in value:
        raise UnreadableLogin(f"the {what} header escapes with a backslash: {value!r}")
    match = head.match(value)
    if not match:
        raise UnreadableLogin(f"the {what} header {value!r} does not start with a valid type")
    params: dict[str, str] = {}
    quoted: set[str] = set()
    pos, end = match.end(), len(value.rstrip(" \t"))
    while pos < end:
        param = _PARAM.match(value, pos)
        if not param:
            raise UnreadableLogin(f"the {what} header {value!r} has malformed parameters")
        key, raw = param[1].lower(), param[2]
        if key in params:
            raise UnreadableLogin(f"the {what} header repeats the parameter {key!r}")
        if raw.startswith('"'):
            raw = raw[1:-1]
            quoted.add(key)
        params[key] = raw
        pos = param.end()
    return match[1].lower(), params, quoted


def _params(params: dict[str, str], what: str, allowed: set[str]) -> bool:
    """Refuses a parameter not allowed and a charset other than utf-8; True if one was sent."""
    if extra := sorted(params.keys() - allowed - {"charset"}):
        raise UnreadableLogin(f"{what} takes no parameter {extra[0]!r}")
    charset = params.get("charset")
    if charset is not None and charset.lower() != "utf-8":
        raise UnreadableLogin(f"{what} declares charset {charset!r}; only utf-8 is read")
    return charset is not None


def _decode(raw: str, where: str, *, plus: bool = True) -> str:
    if _BAD_PERCENT.search(raw):
        raise UnreadableLogin(f"the {where} holds a '%' not followed by two hex digits")
    try:
        return unquote_to_bytes(raw.replace("+", " ") if plus else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableLogin(f"the {where} percent-encodes bytes that are not UTF-8") from exc


def _read_form(text: str) -> list[tuple[str, str]]:
    raw = _FORM_RAW.search(text)
    if raw:
        raise UnreadableLogin(f"the form body holds a raw {raw[0]!r} (browsers percent-encode it)")
    pairs: list[tuple[str, str]] = []
    for pair in text.split("&"):
        if not pair:
            continue  # 'a=1&&b=2' and a trailing '&': every framework skips an empty pair
        name, eq, value = pair.partition("=")
        if not eq:
            raise UnreadableLogin(f"the form body holds a name without '=': {name[:40]!r}")
        pairs.append((_decode(name, "form body"), _decode(value, "form body")))
    return pairs


def _read_multipart(body: bytes, boundary: str) -> list[tuple[str, str]]:
    parser = multipart.PushMultipartParser(
        boundary, content_length=len(body), max_segment_count=MAX_FIELDS, strict=True
    )
    segments: list[tuple[Any, bytearray]] = []
    try:
        with parser:
            for event in parser.parse(body):
                if isinstance(event, multipart.MultipartSegment):
                    segments.append((event, bytearray()))
                elif event:
                    segments[-1][1].extend(event)
    except multipart.MultipartError as exc:
        raise UnreadableLogin(f"the multipart body is malformed: {exc}") from exc
    _check_framing(body, boundary.encode("ascii"), len(segments))
    return [_read_part(segment, bytes(value)) for segment, value in segments]


def _check_framing(body: bytes, boundary: bytes, parts: int) -> None:
    """What the library lets through: a preamble, an epilogue (a part after the closing
    boundary), bare CR or LF (LF-only framing some parsers accept), the boundary string inside
    a header or a value, whitespace before a header's colon."""
    bare = body.replace(b"\r\n", b"")
    if b"\r" in bare or b"\n" in bare:
        raise UnreadableLogin("the multipart body holds a line break that is not CRLF")
    if body.count(boundary) != parts + 1:
        raise UnreadableLogin("the multipart boundary string appears inside a part")
    delimiter, close = b"--" + boundary, b"--" + boundary + b"--"
    if not body.startswith(delimiter + b"\r\n" if parts else close):
        raise UnreadableLogin("the multipart body has bytes before its first boundary")
    if not (body.endswith(close) or body.endswith(close + b"\r\n")):
        raise UnreadableLogin("the multipart body has bytes after its closing boundary")
    for chunk in body.split(delimiter)[1:-1]:
        for line in chunk[2:].partition(b"\r\n\r\n")[0].split(b"\r\n"):
            if not _PART_HEADER.match(line):
                raise UnreadableLogin(f"a multipart part has the header {line[:60]!r}")


def _read_part(segment: Any, raw: bytes) -> tuple[str, str]:
    headers: list[tuple[str, str]] = segment.headerlist
    dispositions = [value for kind, value in headers if kind.lower() == "content-disposition"]
    types = [value for kind, value in headers if kind.lower() == "content-type"]
    if len(dispositions) != 1 or len(types) > 1:
        raise UnreadableLogin("a multipart part needs one Content-Disposition, one Content-Type")
    for value in types:
        media, params, _ = _header_params(value, _MEDIA, "part Content-Type")
        _params(params, "a part's Content-Type", set())
        if media != "text/plain":
            raise UnreadableLogin(f"a multipart part is sent as {value!r}, not text/plain")
    value = dispositions[0]
    _, params, quoted = _header_params(value, _DISPOSITION, "part Content-Disposition")
    if "filename" in params or "filename*" in params:
        raise UnreadableLogin("a multipart part carries a file; a login has none")
    if set(params) != {"name"} or "name" not in quoted:
        raise UnreadableLogin(f"a part's Content-Disposition is not one quoted name: {value!r}")
    name = params["name"]
    if "%" in name:
        raise UnreadableLogin(f"the part name {name!r} holds '%' (decoded by some parsers)")
    if name != segment.name or segment.filename is not None:
        raise UnreadableLogin(f"the part name {name!r} is read differently by the parser")
    if field_reading(name) == "_charset_":
        raise UnreadableLogin("a multipart '_charset_' field would change how parts decode")
    return name, raw.decode("utf-8")


def _multipart_body(pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
    boundary = "login-" + secrets.token_hex(16)
    while any(boundary in name or boundary in value for name, value in pairs):
        boundary = "login-" + secrets.token_hex(16)  # pragma: no cover - 2**-128
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in pairs
    ]
    return boundary, ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8")


def _read_json(text: str) -> dict[str, object]:
    try:
        data = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_constant=_json_constant,
            parse_float=_json_float,
        )
    except UnreadableLogin:
        raise
    except (ValueError, RecursionError) as exc:
        raise UnreadableLogin(f"the JSON body cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise UnreadableLogin("the JSON body is not an object")
    _unique(list(data.items()))
    for key, value in data.items():
        # A nested object or list could be read instead of the top-level fields (Rails'
        # ParamsWrapper reads `{"session": {...}}` when it is there): plain values only.
        if isinstance(value, dict | list):
            raise UnreadableLogin(f"the JSON field {key!r} is not a plain value")
        if isinstance(value, str):
            _check_value(value)
    return data


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise UnreadableLogin(f"the JSON body repeats the key {key!r}")
        seen.add(key)
    return dict(pairs)


def _json_constant(name: str) -> object:
    raise UnreadableLogin(f"the JSON body holds {name}, which JSON does not allow")


def _json_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise UnreadableLogin(f"the JSON number {raw[:40]!r} is too large")
    return value


def _json_body(data: Mapping[str, object]) -> bytes:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:  # a lone surrogate ("\ud800")
        raise UnreadableLogin(f"the JSON body cannot be written as UTF-8: {exc}") from exc


def _check_value(value: str) -> None:
    if _VALUE_CONTROL.search(value):
        raise UnreadableLogin("a value holds a control character")


def _unique(pairs: list[tuple[str, object]] | list[tuple[str, str]]) -> dict[str, object]:
    """The fields by name; refuses too many, empty or control-laden names, a name twice, and two
    names with one field_reading."""
    if len(pairs) > MAX_FIELDS:
        raise UnreadableLogin(f"the login body has more than {MAX_FIELDS} fields")
    readings: dict[str, str] = {}
    for name, value in pairs:
        if not name or _NAME_CONTROL.search(name):
            raise UnreadableLogin(f"the field name {name!r} is empty or holds a control character")
        if isinstance(value, str):
            _check_value(value)
        other = readings.get(field_reading(name))
        if other == name:
            raise UnreadableLogin(f"the field {name!r} appears twice")
        if other is not None:
            raise UnreadableLogin(f"the fields {other!r} and {name!r} may be read as one field")
        readings[field_reading(name)] = name
    return dict(pairs)


def _check_username(fields: Mapping[str, object], field: str) -> None:
    """Present with a plain string (another field read as it was refused by _unique); no
    surrounding space, as whether the application trims it is not known here."""
    if field not in fields:
        raise UnreadableLogin(f"the user name field {field!r} is missing")
    value = fields[field]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USERNAME:
        raise UnreadableLogin(f"the field {field!r} does not hold a user name")
    if value != value.strip() or _NAME_CONTROL.search(value):
        raise UnreadableLogin(f"the user name in {field!r} has surrounding space or a control")


def _check_query(query: str, fields: Mapping[str, object]) -> None:
    """Servlets' getParameter and PHP's $_REQUEST merge query and body: no query key may read as
    a body field (the user name field among them), except the very same name with the very
    same value, once (a form whose action repeats a hidden field, such as DokuWiki's `id`).
    Keys are taken under every reading: split on '&' and ';', '+' as a space and as itself."""
    query = query.replace(";", "&")
    raw = _FORM_RAW.search(query)
    if raw:
        raise UnreadableLogin(f"the query string holds the raw character {raw[0]!r}")
    pairs = [pair for pair in query.split("&") if pair]
    if len(pairs) > MAX_FIELDS:
        raise UnreadableLogin(f"the query string has more than {MAX_FIELDS} parameters")
    taken = {field_reading(name): name for name in fields}
    repeated: set[str] = set()
    for pair in pairs:
        key, _, value = pair.partition("=")
        readings = {field_reading(_decode(key, "query string", plus=p)) for p in (True, False)}
        values = {_decode(value, "query string", plus=p) for p in (True, False)}
        keys = {_decode(key, "query string", plus=p) for p in (True, False)}
        for reading in readings & taken.keys():
            name = taken[reading]
            same = keys == {name} and values == {fields[name]} and name not in repeated
            if not same:
                raise UnreadableLogin(
                    f"the query string's {key!r} may be read as the field {name!r}"
                )
            repeated.add(name)
