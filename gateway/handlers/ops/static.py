"""The gateway's own static files (its stylesheet, the passkey script), read into memory once at
start: a request names one of them exactly or gets the 404 page. No path is ever joined to a
directory, so `..`, encoded dots or a name too long for the file system cannot reach a file
(or fail with a 500), and serving them needs no file descriptor."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from aiohttp import web

from gateway.errors import NotFound
from gateway.i18n import N_

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PREFIX = "/.gateway/static/"


class StaticFiles:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        for path in sorted(directory.iterdir()):
            if path.is_file() and not path.is_symlink():
                body = path.read_bytes()
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                self.files[path.name] = (body, kind, etag)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else ""
        found = self.files.get(name)
        if found is None:
            raise NotFound(N_("There is no such file here."))
        body, kind, etag = found
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if kind.startswith("text/") or kind.endswith("javascript") else None
        return web.Response(body=body, content_type=kind, charset=charset, headers=headers)
