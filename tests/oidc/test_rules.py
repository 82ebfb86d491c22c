"""The relying party's rules with no provider: the discovery document, the ID token's claims
at the edges of the clock skew, the user's name, the provider's second factor per policy, and
the settings and policy keys that set them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config_errors import ConfigInvalid
from gateway.crypto import Cipher, generate_key
from gateway.identity.oidc import (
    ATTEMPT_TTL,
    DEFAULT_MFA_AMR,
    AnswerRefused,
    Attempt,
    ProviderError,
    display_name,
    groups,
    parse_discovery,
    signed_in_within,
    user_name,
    verified_email,
)
from gateway.identity.oidc_token import Expected, check_claims
from gateway.policy import check_policy_dir, load_policy_dir
from gateway.policy.provider_mfa import ProviderMfa, provider_mfa_counts
from gateway.settings import settings_from_dict
from tests.support import settings_dict

ISSUER = "https://id.example.com"
NOW = 1_800_000_000.0
EXPECTED = Expected(ISSUER, "gateway", "n0nce", ("RS256",), skew=60.0)


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": "gateway", "sub": "1", "nonce": "n0nce",
            "iat": NOW - 10, "exp": NOW + 300}  # fmt: skip
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def test_claims_within_the_clock_skew_pass_and_beyond_it_are_refused() -> None:
    """exp, iat and nbf are forgiven clock_skew seconds, and not one more."""
    check_claims(claims(exp=NOW - 59), EXPECTED, NOW)
    check_claims(claims(iat=NOW + 59, nbf=NOW + 59), EXPECTED, NOW)
    for changed in (
        {"exp": NOW - 60},
        {"iat": NOW + 61},
        {"nbf": NOW + 61},
        {"exp": None},
        {"exp": "soon"},
        {"iat": True},
    ):
        with pytest.raises(AnswerRefused):
            check_claims(claims(**changed), EXPECTED, NOW)


@pytest.mark.parametrize(
    "changed",
    [
        {"iss": "https://id.example.com/"},
        {"aud": "another"},
        {"aud": ["another", "gateway"]},  # several audiences and no azp
        {"aud": ["another", "gateway"], "azp": "another"},
        {"azp": "another"},
        {"nonce": "another"},
        {"nonce": None},
        {"sub": ""},
    ],
)
def test_claims_refused(changed: dict[str, Any]) -> None:
    with pytest.raises(AnswerRefused):
        check_claims(claims(**changed), EXPECTED, NOW)


def test_auth_time_is_required_and_checked_when_max_age_is_asked() -> None:
    """OpenID Connect Core 3.1.3.7: with max_age asked, auth_time must be there and no older than
    max_age (and the clock skew); without, an auth_time present must still be a number not in
    the future."""
    asked = Expected(ISSUER, "gateway", "n0nce", ("RS256",), skew=60.0, max_age=300.0)
    check_claims(claims(auth_time=NOW - 359), asked, NOW)
    for changed in ({"auth_time": None}, {"auth_time": NOW - 361}, {"auth_time": "today"}):
        with pytest.raises(AnswerRefused):
            check_claims(claims(**changed), asked, NOW)
    check_claims(claims(auth_time=NOW - 86400), EXPECTED, NOW)
    for changed in ({"auth_time": NOW + 61}, {"auth_time": "today"}):
        with pytest.raises(AnswerRefused):
            check_claims(claims(**changed), EXPECTED, NOW)


def test_the_providers_second_factor_counts_only_while_fresh() -> None:
    """A second factor the provider asked counts as the session's only when its auth_time is at
    most provider_mfa.max_age old (and the clock skew); without auth_time it does not count."""
    assert signed_in_within({"auth_time": NOW - 600}, 600.0, 60.0, NOW)
    assert signed_in_within({"auth_time": NOW - 659}, 600.0, 60.0, NOW)
    assert not signed_in_within({"auth_time": NOW - 661}, 600.0, 60.0, NOW)
    assert not signed_in_within({}, 600.0, 60.0, NOW)
    assert not signed_in_within({"auth_time": "now"}, 600.0, 60.0, NOW)


def test_several_audiences_with_this_gateway_as_azp_pass() -> None:
    check_claims(claims(aud=["another", "gateway"], azp="gateway"), EXPECTED, NOW)


def discovery(**changes: Any) -> dict[str, Any]:
    data = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256"],
    }
    data.update(changes)
    return data


def test_discovery_is_read_and_checked() -> None:
    found = parse_discovery(discovery(), ISSUER)
    assert found.token_auth == "client_secret_basic"
    assert found.algorithms == {"RS256"}  # HS256 (keyed by the client secret) is never taken
    post = parse_discovery(
        discovery(token_endpoint_auth_methods_supported=["client_secret_post"]), ISSUER
    )
    assert post.token_auth == "client_secret_post"
    for changed in (
        {"issuer": "https://other.example.com"},
        {"token_endpoint": "http://id.example.com/token"},  # not https, and not loopback
        {"code_challenge_methods_supported": ["plain"]},
        {"id_token_signing_alg_values_supported": ["HS256", "none"]},
        {"response_types_supported": ["id_token"]},
        {"token_endpoint_auth_methods_supported": ["private_key_jwt"]},
        {"jwks_uri": None},
    ):
        with pytest.raises(ProviderError):
            parse_discovery(discovery(**changed), ISSUER)


def test_the_user_is_named_by_a_verified_email_or_another_claim() -> None:
    assert user_name({"email": "Alice@Example.com", "email_verified": True}, "email") == (
        "alice@example.com"
    )
    for unverified in ({"email": "a@example.com"}, {"email": "a@example.com",
                                                    "email_verified": "true"}):  # fmt: skip
        with pytest.raises(AnswerRefused):
            user_name(unverified, "email")
    assert user_name({"preferred_username": "alice"}, "preferred_username") == "alice"
    for bad in ("alice\r\nX-Admin: 1", "a" * 400, "b\x85ob"):
        with pytest.raises(AnswerRefused):
            user_name({"preferred_username": bad}, "preferred_username")
    assert display_name({"name": "Eve\nX: 1"}, "eve") == "eve"
    assert verified_email({"email": "a@example.com", "email_verified": False}) == ""
    with pytest.raises(AnswerRefused):
        user_name({"email": "a@example.com", "email_verified": True}, "preferred_username")


def test_a_name_is_one_person_and_no_crafted_claim_aliases_another() -> None:
    """A name is lower-cased as the users file and the directory name users; a claim that Unicode
    compatibility folding would change (a Kelvin sign for K, full-width letters, a ligature, a
    no-break space), with spaces at its ends, or with an invisible format character, is refused:
    it could stand for another user's name, or look like one."""
    claim = "preferred_username"
    assert user_name({claim: "Kate"}, claim) == "kate"
    assert user_name({claim: "Stra\u00dfe"}, claim) == "stra\u00dfe"  # not "strasse"
    assert user_name({claim: "J\u00f6rg"}, claim) == "j\u00f6rg"
    for crafted in (
        "\u212aate",  # Kelvin sign
        "\uff4bate",  # full-width k
        "\ufb01nn",  # fi ligature
        "kate\u00a0",  # no-break space
        " kate",
        "kate ",
        "ka\u200bte",  # zero-width space
        "kat\u202ee",  # right-to-left override
        "ka\u00adte",  # soft hyphen
        "J\u006f\u0308rg",  # o + combining diaeresis: NFKC composes it
    ):
        with pytest.raises(AnswerRefused):
            user_name({claim: crafted}, claim)


def test_groups_come_from_the_named_claim_only() -> None:
    token = {"groups": ["staff", 3, "", "ops", "admins,x", "a\r\nb"], "roles": "admin"}
    assert groups(token, "groups") == ["staff", "ops"]
    assert groups(token, "") == [] and groups(token, "roles") == []


def test_the_providers_second_factor_counts_only_as_the_policy_says() -> None:
    mfa = {"amr": ["pwd", "mfa"]}
    assert not provider_mfa_counts(mfa, None, ("mfa",), ())  # ask: the default
    assert provider_mfa_counts(mfa, ProviderMfa(), ("mfa",), ())  # accept: the settings' lists
    assert not provider_mfa_counts({"amr": ["pwd"]}, ProviderMfa(), ("mfa",), ())
    assert not provider_mfa_counts({"amr": "mfa"}, ProviderMfa(), ("mfa",), ())  # not a list
    own = ProviderMfa(amr=("hwk",), acr=("urn:loa:3",))  # the policy's own lists
    assert not provider_mfa_counts(mfa, own, ("mfa",), ())
    assert provider_mfa_counts({"amr": ["hwk"]}, own, ("mfa",), ())
    assert provider_mfa_counts({"acr": "urn:loa:3"}, own, (), ())


def test_one_factor_amr_values_are_not_the_providers_mfa_by_default() -> None:
    """RFC 8176's "otp" or "hwk" alone may be a single factor (a passwordless code, a key
    without its PIN): by default only "mfa" shows the provider's second factor."""
    for one_factor in (["otp"], ["hwk"]):
        assert not provider_mfa_counts({"amr": one_factor}, ProviderMfa(), DEFAULT_MFA_AMR, ())
    assert provider_mfa_counts({"amr": ["pwd", "mfa"]}, ProviderMfa(), DEFAULT_MFA_AMR, ())


def oidc_settings(tmp_path: Path, **oidc: Any) -> dict[str, Any]:
    app = {"upstream": "http://127.0.0.1:9", "hosts": ["*"], "identity": "portal",
           "portal": {"oidc": oidc}}  # fmt: skip
    return settings_dict(tmp_path, {"app": app})


def test_oidc_settings_are_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    data = oidc_settings(tmp_path, issuer=ISSUER, client_id="gw", client_secret={"file": str(secret)},
                         provider_mfa={"acr": ["urn:loa:3"]}, clock_skew="30s")  # fmt: skip
    [app] = settings_from_dict(data, tmp_path / "gateway.yaml").applications
    assert app.portal is not None and app.portal.oidc is not None
    oidc = app.portal.oidc
    assert (oidc.issuer, oidc.client_id, oidc.scopes) == (
        ISSUER,
        "gw",
        ("openid", "email", "profile"),
    )
    assert (oidc.mfa_amr, oidc.mfa_acr, oidc.clock_skew) == (
        ("mfa",),
        ("urn:loa:3",),
        30,
    )
    assert (oidc.max_age, oidc.mfa_max_age) == (None, 600.0)
    data["applications"]["app"]["portal"]["oidc"] |= {
        "max_age": "1h",
        "provider_mfa": {"max_age": "8h"},
    }
    [app] = settings_from_dict(data, tmp_path / "gateway.yaml").applications
    assert app.portal is not None and app.portal.oidc is not None
    assert (app.portal.oidc.max_age, app.portal.oidc.mfa_max_age) == (3600.0, 28800.0)
    assert oidc.client_secret.read() == "s"


def test_oidc_settings_mistakes_are_reported_at_once(tmp_path: Path) -> None:
    data = oidc_settings(tmp_path, issuer="http://id.example.com", client_secret="inline",
                         scopes=["email"], clock_skew="1h", surprise=1)  # fmt: skip
    data["applications"]["app"]["portal"]["users_file"] = "users.yaml"
    with pytest.raises(ConfigInvalid) as caught:
        settings_from_dict(data, tmp_path / "gateway.yaml")
    text = str(caught.value)
    for part in ("one of them", "https:// URL", "client_id", "not hold the secret itself",
                 "must hold openid", "5 minutes or less", "surprise"):  # fmt: skip
        assert part in text, part


def test_policy_provider_mfa(tmp_path: Path) -> None:
    head = "company: {0}\nmembers:\n  domains: [{0}.example]\n"
    files = {
        "ask.yaml": head.format("ask") + "provider_mfa: ask\n",
        "accept.yaml": head.format("accept") + "provider_mfa: accept\n",
        "own.yaml": head.format("own") + "provider_mfa:\n  acr: [urn:loa:3]\n",
        "none.yaml": head.format("none"),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    policy = load_policy_dir(tmp_path)
    found = {c.id: c.provider_mfa for c in policy.companies}
    assert found == {"ask": None, "accept": ProviderMfa(), "none": None,
                     "own": ProviderMfa((), ("urn:loa:3",))}  # fmt: skip
    (tmp_path / "bad.yaml").write_text(head.format("bad") + "provider_mfa: yes please\n")
    (tmp_path / "empty.yaml").write_text(head.format("empty") + "provider_mfa: {amr: []}\n")
    messages = [error.message for error in check_policy_dir(tmp_path)]
    assert any("must be ask, accept" in m for m in messages), messages
    assert any("needs amr or acr" in m for m in messages), messages


def test_a_sign_in_begun_is_sealed_for_its_application_state_and_time() -> None:
    """The cookie of a sign-in begun opens only with this gateway's key, for the application it
    was made for, for its own state, and before it expires; a changed byte opens nothing."""
    cipher = Cipher(generate_key())
    attempt = Attempt.new("/reports", "https://wiki.example.com/.gateway/oidc/callback", NOW)
    sealed = attempt.seal(cipher, "wiki")
    assert Attempt.unseal(sealed, cipher, "wiki", attempt.state, NOW) == attempt
    assert Attempt.unseal(sealed, cipher, "wiki", attempt.state, NOW + ATTEMPT_TTL) is None
    assert Attempt.unseal(sealed, cipher, "other", attempt.state, NOW) is None
    assert Attempt.unseal(sealed, cipher, "wiki", "another state", NOW) is None
    assert Attempt.unseal(sealed, Cipher(generate_key()), "wiki", attempt.state, NOW) is None
    changed = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    for odd in (changed, "", "\u0663" * 43, None):
        assert Attempt.unseal(odd, cipher, "wiki", attempt.state, NOW) is None
