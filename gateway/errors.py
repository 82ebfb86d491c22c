"""The gateway's error tree; one middleware maps each to a page with a status and a next step.

GatewayError
├── BadRequest            400  malformed path, cookie, form or CSRF token
├── Forbidden             403  an access rule or a binding check refused the request
│   └── SignInOver        403  a sign-in step with no sign-in going (expired, or never started)
├── NotFound              404
├── MisdirectedRequest    421  no application serves this host
├── UpstreamUnreachable   502  the application did not answer
├── StoreDown             503  the store cannot be reached: fail closed
├── DirectoryDown         503  the directory (LDAP) cannot check a password: fail closed
├── ProviderDown          503  the OpenID provider cannot be reached: fail closed
└── UpstreamTimeout       504  the application took too long
"""

from __future__ import annotations

from gateway.i18n import N_


class GatewayError(Exception):
    status = 500
    title = N_("Something went wrong")

    def __init__(self, message: str, next_step: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step


class BadRequest(GatewayError):
    status = 400
    title = N_("This request cannot be handled")


class Forbidden(GatewayError):
    status = 403
    title = N_("Access denied")


class SignInOver(Forbidden):
    title = N_("Please sign in again")


class NotFound(GatewayError):
    status = 404
    title = N_("Page not found")


class MisdirectedRequest(GatewayError):
    status = 421
    title = N_("Unknown site")


class UpstreamUnreachable(GatewayError):
    status = 502
    title = N_("The application is not answering")

    def __init__(self, origin: str, detail: str = "") -> None:
        super().__init__(
            N_("The gateway could not reach the application behind it."),
            N_("Try again in a minute. If it keeps happening, tell the people who run this site."),
        )
        self.origin = origin
        self.detail = detail


class UpstreamTimeout(GatewayError):
    status = 504
    title = N_("The application took too long")

    def __init__(self, origin: str) -> None:
        super().__init__(
            N_("The application behind the gateway did not answer in time."),
            N_("Try again in a minute."),
        )
        self.origin = origin


class StoreDown(GatewayError):
    status = 503
    title = N_("Sign-in is unavailable")


class DirectoryDown(GatewayError):
    status = 503
    title = N_("Sign-in is unavailable")

    def __init__(self) -> None:
        super().__init__(
            N_(
                "The gateway cannot reach the directory that checks passwords, so it cannot check "
                "who you are."
            ),
            N_("Try again in a minute. If it keeps happening, tell the people who run this site."),
        )


class ProviderDown(GatewayError):
    status = 503
    title = N_("Sign-in is unavailable")

    def __init__(self) -> None:
        super().__init__(
            N_("The gateway cannot reach the sign-in service that checks who you are."),
            N_("Try again in a minute. If it keeps happening, tell the people who run this site."),
        )
