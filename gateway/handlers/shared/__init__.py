"""The one HTTP helper package every handler family may import (and which imports none of them).

- `request`: the runtime, the request context, its cookies, the user's company, the Visit.
- `cookies`: the gateway session read and set, the browser's id.
- `csrf`: the token of a form and the check of a POST.
- `redirects`: 303s, /.gateway/ URLs, the `rd` to return to.
- `pages`: a page for the user of a session.
- `pending`: the session waiting for its second factor; whether enrolment may be put off.
- `attempts`: a wrong answer counted, the end of a sign-in, the 429 wait pages.
- `completion`: the next step after the password; a completed sign-in's cookies.
- `methods`: the registry of second-factor methods and their pages.
- `verified`: the verified session and how recent its second factor is; "Confirm it is you".
- `factor_changes`: what changing one's factors needs (a recent factor) and sets off (notices).
"""
