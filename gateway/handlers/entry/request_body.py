"""A form-like request body read whole before the request is forwarded, for the checks that
must see its fields: intercept mode's login and its credential fields. (A `_method` in a body
is read strictly instead: proxy.method_in_body.)"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import BadRequest
from gateway.identity.body_fields import is_form_like
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
            raise BadRequest("A compressed form cannot be read here, so it was not passed on.")
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
