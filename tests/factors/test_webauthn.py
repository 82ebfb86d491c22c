"""The WebAuthn wrappers, against a software authenticator that signs like a real one (P-256,
"none" attestation): options, challenges, the checks on origin, RP ID and counter."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

from gateway.factors import webauthn
from gateway.factors.webauthn import (
    AUTHENTICATE,
    CHALLENGE_TTL,
    REGISTER,
    Credential,
    Refused,
    RelyingParty,
)

RP = RelyingParty(id="localhost", origin="http://localhost:8080", name="Acme")
NOW = 1_700_000_000.0
UP, UV, AT = 0x01, 0x04, 0x40


class SoftAuthenticator:
    """One credential on a pretend authenticator; `step` is how much its counter moves per use
    (0: it keeps no counter, like most passkeys)."""

    def __init__(self, step: int = 1, start: int = 0) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.raw_id = secrets.token_bytes(16)
        self.id = bytes_to_base64url(self.raw_id)
        self.sign_count = start
        self.step = step

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return bytes(
            cbor2.dumps(
                {
                    1: 2,
                    3: -7,
                    -1: 1,
                    -2: numbers.x.to_bytes(32, "big"),
                    -3: numbers.y.to_bytes(32, "big"),
                }
            )
        )

    def _auth_data(self, rp_id: str, flags: int, attested: bool = False) -> bytes:
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
        data += self.sign_count.to_bytes(4, "big")
        if attested:
            data += bytes(16) + len(self.raw_id).to_bytes(2, "big") + self.raw_id
            data += self._cose_key()
        return data

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        return json.dumps(data).encode()

    def register(
        self, options: str, origin: str, rp_id: str | None = None, challenge: str | None = None
    ) -> str:
        """The answer navigator.credentials.create() would give, as the page posts it."""
        opts = json.loads(options)
        client_data = self._client_data("webauthn.create", challenge or opts["challenge"], origin)
        auth_data = self._auth_data(rp_id or opts["rp"]["id"], UP | UV | AT, attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "attestationObject": bytes_to_base64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def sign(
        self,
        options: str,
        origin: str,
        rp_id: str | None = None,
        challenge: str | None = None,
    ) -> str:
        """The answer navigator.credentials.get() would give."""
        opts = json.loads(options)
        self.sign_count += self.step
        client_data = self._client_data("webauthn.get", challenge or opts["challenge"], origin)
        auth_data = self._auth_data(rp_id or opts["rpId"], UP | UV)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": self.id,
                "rawId": self.id,
                "type": "public-key",
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "authenticatorData": bytes_to_base64url(auth_data),
                    "signature": bytes_to_base64url(signature),
                },
                "clientExtensionResults": {},
            }
        )


def enrolled(authenticator: SoftAuthenticator, name: str = "Laptop") -> Credential:
    challenge = webauthn.new_challenge(REGISTER, NOW)
    options = webauthn.registration_options(
        RP, "alice@acme.example", webauthn.new_user_handle(), [], challenge
    )
    answer = authenticator.register(options, RP.origin)
    return webauthn.verify_registration(RP, answer, challenge, name, [], NOW)


def signed(authenticator: SoftAuthenticator, credentials: list[Credential], **kw: Any) -> str:
    challenge = webauthn.new_challenge(AUTHENTICATE, NOW)
    options = webauthn.authentication_options(RP, credentials, challenge)
    answer = authenticator.sign(options, kw.pop("origin", RP.origin), **kw)
    webauthn.verify_authentication(RP, answer, challenge, credentials)
    return answer


@pytest.mark.parametrize(
    ("host", "secure", "rp_id", "origin"),
    [
        ("localhost:8080", False, "localhost", "http://localhost:8080"),
        ("Login.Example.COM", True, "login.example.com", "https://login.example.com"),
        ("login.example.com:443", True, "login.example.com", "https://login.example.com"),
        ("login.example.com:8443", True, "login.example.com", "https://login.example.com:8443"),
        ("example.com:80", False, "example.com", "http://example.com"),
    ],
)
def test_relying_party_comes_from_the_host_name(
    host: str, secure: bool, rp_id: str, origin: str
) -> None:
    """The RP ID is the host name without its port; the origin is written as browsers write it
    (the scheme's default port left out)."""
    rp = RelyingParty.for_host(host, secure, "Acme")
    assert (rp.id, rp.origin) == (rp_id, origin)


def test_registration_options_name_the_site_and_user_and_exclude_existing_passkeys() -> None:
    """The options carry the RP, an opaque user handle (not the email), the session's challenge,
    no attestation, a preferred passkey, and the user's passkeys as excluded."""
    existing = enrolled(SoftAuthenticator())
    handle = webauthn.new_user_handle()
    challenge = webauthn.new_challenge(REGISTER, NOW)
    options = json.loads(
        webauthn.registration_options(RP, "alice@acme.example", handle, [existing], challenge)
    )
    assert options["rp"] == {"id": "localhost", "name": "Acme"}
    assert options["user"]["id"] == handle and options["user"]["name"] == "alice@acme.example"
    assert options["challenge"] == challenge["challenge"]
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert [c["id"] for c in options["excludeCredentials"]] == [existing.id]
    assert options["timeout"] == CHALLENGE_TTL * 1000


def test_authentication_options_allow_only_the_users_passkeys() -> None:
    """Sign-in options list exactly the user's credentials, with their transports."""
    first, second = enrolled(SoftAuthenticator()), enrolled(SoftAuthenticator(), "Key")
    challenge = webauthn.new_challenge(AUTHENTICATE, NOW)
    options = json.loads(webauthn.authentication_options(RP, [first, second], challenge))
    assert options["rpId"] == "localhost"
    assert options["challenge"] == challenge["challenge"]
    assert [c["id"] for c in options["allowCredentials"]] == [first.id, second.id]
    assert options["allowCredentials"][0]["transports"] == ["internal"]


def test_a_challenge_is_used_once() -> None:
    """Taking the challenge removes it: a second answer finds none."""
    scratch: dict[str, Any] = {"webauthn": webauthn.new_challenge(AUTHENTICATE, NOW)}
    assert webauthn.take_challenge(scratch, AUTHENTICATE, NOW + 1)["purpose"] == AUTHENTICATE
    assert "webauthn" not in scratch
    with pytest.raises(Refused) as refused:
        webauthn.take_challenge(scratch, AUTHENTICATE, NOW + 2)
    assert refused.value.reason == "expired"


def test_a_challenge_expires_and_serves_only_its_purpose() -> None:
    """A challenge is good for CHALLENGE_TTL seconds, and a registration challenge does not
    answer a sign-in (nor the reverse); either way it is gone afterwards."""
    challenge = webauthn.new_challenge(REGISTER, NOW)
    assert webauthn.take_challenge({"webauthn": dict(challenge)}, REGISTER, NOW + CHALLENGE_TTL - 1)
    for purpose, at in ((REGISTER, NOW + CHALLENGE_TTL), (AUTHENTICATE, NOW)):
        scratch: dict[str, Any] = {"webauthn": dict(challenge)}
        with pytest.raises(Refused, match="expired"):
            webauthn.take_challenge(scratch, purpose, at)
        assert scratch == {}


def test_names_are_trimmed_and_unique_per_user() -> None:
    """Names are trimmed, must be 1 to 60 characters, and differ (ignoring case) from the
    user's other passkeys' names."""
    laptop = enrolled(SoftAuthenticator(), "Work laptop")
    assert webauthn.clean_name("  Blue   key ", [laptop]) == "Blue key"
    for bad in ("", "   ", "x" * 61, "work LAPTOP"):
        with pytest.raises(Refused, match="name"):
            webauthn.clean_name(bad, [laptop])


@pytest.mark.parametrize(
    ("stored", "reported", "ok"),
    [(0, 0, True), (0, 1, True), (5, 6, True), (5, 5, False), (5, 4, False), (5, 0, False)],
)
def test_counter_rule(stored: int, reported: int, ok: bool) -> None:
    """No counter at all (0 and 0) is fine; otherwise the count must go up."""
    assert webauthn.counter_ok(stored, reported) is ok


def test_registration_then_sign_in() -> None:
    """A registered passkey keeps its key, name, transports and counter, survives the JSON
    round trip of the store, and signs in with a counter that goes up."""
    authenticator = SoftAuthenticator(step=1)
    credential = enrolled(authenticator, "Work laptop")
    assert credential.id == authenticator.id
    assert credential.name == "Work laptop"
    assert credential.transports == ["internal"]
    assert credential.sign_count == 0 and credential.created == NOW
    stored = Credential.from_dict(json.loads(json.dumps(credential.to_dict())))
    assert stored == credential
    challenge = webauthn.new_challenge(AUTHENTICATE, NOW)
    options = webauthn.authentication_options(RP, [stored], challenge)
    used, count = webauthn.verify_authentication(
        RP, authenticator.sign(options, RP.origin), challenge, [stored]
    )
    assert used.id == credential.id and count == 1


def test_registration_refuses_another_origin_rp_or_challenge_and_a_known_authenticator() -> None:
    """The library's checks reach the caller as Refused: a page on another origin, a credential
    for another RP ID, an answer to another challenge, or an authenticator already added."""
    authenticator = SoftAuthenticator()
    challenge = webauthn.new_challenge(REGISTER, NOW)
    options = webauthn.registration_options(RP, "a@b.example", "AAAA", [], challenge)
    other = webauthn.new_challenge(REGISTER, NOW)["challenge"]
    for answer in (
        authenticator.register(options, "http://evil.example:8080"),
        authenticator.register(options, RP.origin, rp_id="evil.example"),
        authenticator.register(options, RP.origin, challenge=other),
    ):
        with pytest.raises(Refused) as refused:
            webauthn.verify_registration(RP, answer, challenge, "Laptop", [], NOW)
        assert refused.value.reason == "invalid"
    existing = webauthn.verify_registration(
        RP, authenticator.register(options, RP.origin), challenge, "Laptop", [], NOW
    )
    with pytest.raises(Refused, match="already registered"):
        webauthn.verify_registration(
            RP, authenticator.register(options, RP.origin), challenge, "Other", [existing], NOW
        )


@pytest.mark.parametrize("answer", ["", "not json", "[]", '{"id": 1}', '{"response": {}}'])
def test_malformed_answers_are_refusals(answer: str) -> None:
    """Whatever a browser (or anyone) posts, the outcome is Refused, never another exception."""
    credential = enrolled(SoftAuthenticator())
    with pytest.raises(Refused):
        webauthn.verify_registration(
            RP, answer, webauthn.new_challenge(REGISTER, NOW), "New", [], NOW
        )
    with pytest.raises(Refused):
        webauthn.verify_authentication(
            RP, answer, webauthn.new_challenge(AUTHENTICATE, NOW), [credential]
        )
    forged = json.dumps({"id": credential.id, "rawId": credential.id, "response": {}})
    with pytest.raises(Refused):
        webauthn.verify_authentication(
            RP, forged, webauthn.new_challenge(AUTHENTICATE, NOW), [credential]
        )


def test_sign_in_refusals() -> None:
    """Another origin, another RP ID, another challenge, a passkey that is not the user's, and
    a counter that does not go up are each refused, with a reason."""
    authenticator = SoftAuthenticator(step=1)
    credential = enrolled(authenticator)
    stranger = SoftAuthenticator()
    enrolled(stranger)
    other = webauthn.new_challenge(AUTHENTICATE, NOW)["challenge"]
    cases: list[tuple[SoftAuthenticator, dict[str, Any], str]] = [
        (authenticator, {"origin": "https://evil.example"}, "invalid"),
        (authenticator, {"rp_id": "evil.example"}, "invalid"),
        (authenticator, {"challenge": other}, "invalid"),
        (stranger, {}, "unknown-credential"),
    ]
    for who, changes, reason in cases:
        with pytest.raises(Refused) as refused:
            signed(who, [credential], **changes)
        assert refused.value.reason == reason, changes

    credential.sign_count = 10  # what the gateway saw last; this copy reports 1 after 0
    authenticator.sign_count = 0
    with pytest.raises(Refused) as refused:
        signed(authenticator, [credential])
    assert refused.value.reason == "counter"


def test_authenticators_without_a_counter_sign_in_again_and_again() -> None:
    """Passkeys that always report 0 are not mistaken for clones."""
    authenticator = SoftAuthenticator(step=0)
    credential = enrolled(authenticator)
    for _ in range(3):
        signed(authenticator, [credential])
