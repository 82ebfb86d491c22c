"""A request body read whole before the request is forwarded, for the checks that must see its
fields: intercept mode's login and its credential fields (form-like bodies), and a `_method`
in a body, which is read strictly (`method_in_body`)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import BadRequest
from gateway.i18n import N_
from gateway.identity.body_fields import is_form_like
from gateway.identity.login_body import MAX_BODY, UnreadableLogin, read_login
from gateway.method_override import parameter_overrides
from gateway.protocol import BodyTooLarge

MAX_CHECKED_BODY = 8 * 1024 * 1024  # a form-like body read to look for fields before forwarding


async def read_form_like(request: web.Request, required: bool) -> bytes | None:
    """The whole body of a form-like request, or None for other bodies. One larger than
    MAX_CHECKED_BODY is refused (413) when it `required` a look, and left unread otherwise when
    its Content-Length says so."""
    if not request.body_exists or not is_form_like(request.headers.get("Content-Type")):
        return None
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding != "identity":  # compressed: the gateway cannot read it as the application might
        if required:
            raise BadRequest(N_("A compressed form cannot be read here, so it was not passed on."))
        return None
    length = request.content_length
    if length is not None and length > MAX_CHECKED_BODY:
        if required:
            raise BodyTooLarge()
        return None
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > MAX_CHECKED_BODY:
            raise BodyTooLarge()
    return bytes(body)


async def method_in_body(request: web.Request) -> tuple[bytes | None, tuple[str, ...] | None]:
    """For a request whose method rules a `_method` in its body could tighten: the body, read,
    and the methods its `_method` fields name. A body read strictly (gateway.identity.
    login_body: a form, JSON or RFC 7578 multipart that no framework could read otherwise, at
    most MAX_BODY) is passed on as read. Any other body (another or no Content-Type, Laravel's
    "+json" sniffing, multipart PHP or Rack would frame differently, compressed, larger,
    without a length) gives None: it may name any method, and goes on unread."""
    if not request.body_exists:
        return None, ()
    length = request.content_length
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if length is None or length > MAX_BODY or coding != "identity":
        return None, None
    read_so_far = bytearray()
    while chunk := await request.content.read(64 * 1024):
        read_so_far.extend(chunk)
    body = bytes(read_so_far)
    try:
        read = read_login(request.headers.get("Content-Type"), body, "", username_field=None)
    except UnreadableLogin:
        return body, None
    fields = [(name, value) for name, value in read.fields.items() if isinstance(value, str)]
    return body, parameter_overrides(fields)
