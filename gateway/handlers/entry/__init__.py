"""How a request for an application comes in: through the gateway as a proxy (`proxy`, every
path that is not a gateway page), or asked about by a front proxy that forwards it itself
(`forward_auth`). What both need: intercept mode's login (`login_intercept` reads and judges
it, `login_answer` acts on the answer, `whoami` asks the application who signed in), its
checks of other requests (`intercept_checks`, `request_body`), and what the application is
sent (`upstream_headers`)."""
