"""The sign-in core: what happens between a right password and a verified session, without HTTP.

A handler gathers what one request brings (`Visit`: the user's company from the policy, the
client address, the browser's id and trusted-network cookie, the store and the clock) once, and
calls in here; what comes back are decisions and effects (who is asked what, whether a wrong
answer ends the sign-in, which cookies a completion releases) that the handler turns into a page
or a redirect. Nothing here imports aiohttp or a handler.

- `visit`: the plain inputs of one request.
- `steps`: the flow as a state machine, `step(state, event) -> (state, effects)`: who is asked
  what after the password, when a wrong answer ends the sign-in, when cookies are released.
- `standing`: what is known of a user's second factor (enrolled, enforced, deferred, trusted).
- `attempts`: wrong answers counted in the store, the waits they lead to, one answer at a time.
- `browsers`: browser ids, the known-browser and shared-login records.
- `methods`: which second-factor methods a user may use or enrol, and which one a page shows.
- `completion`: a verified session and what it releases; deferral.
"""
