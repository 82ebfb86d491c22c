"""The pages people see: Jinja2 templates from the package, no external resources."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import jinja2
from aiohttp import web

from gateway import i18n
from gateway.policy.model import METHOD_NAMES, Branding, Company

DEFAULT_BRANDING = Branding(name=i18n.N_("Sign-in gateway"))
# what handlers pass as text (often a constant marked with i18n.N_): shown in the page's
# language; text already translated, or not in the catalogues, is left as it is
TRANSLATED = frozenset({
    "title", "message", "next_step", "link_text", "error", "done", "problem", "heading",
    "send_label", "sent_again", "cannot_confirm", "remaining_text", "ways", "bad_name",
})  # fmt: skip


def script_words() -> dict[str, str]:
    """What static/passkeys.js and static/recovery.js say, in the page's language (a page puts
    them in a data-words attribute; the scripts keep English for a page without one)."""
    _ = i18n.gettext
    return {
        "cancelled": _(
            "The passkey request was cancelled or ran out of time. Press the button to try "
            "again, or choose another way."
        ),
        "taken": _(
            "This device or key already holds a passkey for your account here. Use another "
            "one, or choose another way."
        ),
        "address": _(
            "Passkeys do not work at this address (they need the site's name, not a number "
            "address). Choose another way."
        ),
        "failed": _("The passkey could not be used here. Try again, or choose another way."),
        "unsupported": _("This browser cannot use passkeys. Choose another way below."),
        "copied": _("Copied all %(count)s codes to the clipboard."),
        "not_copied": _("The codes could not be copied. Select them and copy them yourself."),
    }


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
            extensions=["jinja2.ext.i18n"],
        )
        # one environment for every language: gettext reads the request's (gateway.i18n)
        self.env.policies["ext.i18n.trimmed"] = True
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.raw_gettext, i18n.raw_ngettext, newstyle=True
        )
        self.env.globals["languages"] = i18n.NAMES
        # text made in Python (an error's title, a message) in the page's language, escaped
        self.env.filters["translated"] = lambda text: i18n.gettext(str(text)) if text else text
        self.env.globals["script_words"] = script_words
        self.env.globals["lang"] = i18n.DEFAULT  # render() passes the request's
        self.env.globals["here"] = "/"
        i18n.load_all()
        self.env.globals["default_branding"] = DEFAULT_BRANDING
        self.env.filters["method_name"] = lambda method: i18n.gettext(
            METHOD_NAMES.get(method) or str(method)
        )
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
        with i18n.speaking(i18n.page_locale(company.language if company else None)) as lang:
            if company is None:
                branding = replace(branding, name=i18n.gettext(branding.name))
            for key in TRANSLATED & context.keys():
                if isinstance(context[key], str) and context[key]:
                    context[key] = i18n.gettext(context[key])
            html = self.env.get_template(name).render(
                branding=branding,
                style_nonce=nonce,
                lang=lang,
                here=i18n.here(),
                **context,
            )
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
