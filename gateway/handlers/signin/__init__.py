"""Sign-in pages, one module per method or step: what happens between the application (or the
portal login page) and a verified session, over HTTP. The rules are gateway.signin's.

- `portal_login`: /.gateway/login, portal mode's own login page (the first factor).
- `second_factor`: /.gateway/enrol and /.gateway/challenge, which method's page a request gets.
- `totp`, `passkeys`, `recovery`: each method's enrolment and challenge pages.
- `codes` (sending and checking a code), `code_pages` (typing one, the challenge),
  `phone_codes` and `email_codes` (enrolment): text message, phone call and email.
- `phone_confirm`: confirming a phone number an admin set, after the second factor.
- `defer`: "Remind me later" instead of enrolling.
- `reauth`: "Confirm it is you", before changing how one signs in.
- `sign_out`: /.gateway/logout.
"""
