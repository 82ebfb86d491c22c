"""HTTP only: read the request, call the sign-in core (gateway.signin) or the domain, render a
page or redirect. By family, which do not import each other (import-linter, pyproject.toml):
`signin` (the sign-in pages, per method), `account` (the person's own pages), `admin` (pages and
API), `entry` (the proxy and forward auth), `ops` (health, metrics, static files); and `shared`,
the HTTP helpers they all may use."""
