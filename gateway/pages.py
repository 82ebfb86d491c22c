"""The pages people see: Jinja2 templates from the package, no external resources."""

from __future__ import annotations

import secrets
from typing import Any

import jinja2
from aiohttp import web

from gateway.policy.model import METHOD_NAMES, Branding, Company

DEFAULT_BRANDING = Branding(name="Sign-in gateway")


class Pages:
    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("gateway", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            cache_size=-1,
        )
        self.env.globals["default_branding"] = DEFAULT_BRANDING
        self.env.filters["method_name"] = lambda method: METHOD_NAMES.get(method, method)
        # Every template compiled now: an error page must render when no file can be opened
        # (descriptors run out under load), and a broken template stops the start, not a page.
        for name in self.env.list_templates(extensions=["html"]):
            self.env.get_template(name)

    def render(
        self,
        name: str,
        *,
        status: int = 200,
        company: Company | None = None,
        headers: dict[str, str] | None = None,
        scripts: bool = False,
        **context: Any,
    ) -> web.Response:
        branding = company.branding if company is not None else DEFAULT_BRANDING
        nonce = secrets.token_urlsafe(16)
        html = self.env.get_template(name).render(branding=branding, style_nonce=nonce, **context)
        response = web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=headers
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        # Scripts only where a page needs one (passkeys), and then only the gateway's own files.
        script = "script-src 'self'; " if scripts else ""
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; {script}style-src 'self' 'nonce-{nonce}'; "
            "img-src 'self' data: https:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
