from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from shared.auth.rejected import TokenRejected
from shared.auth.validator import TokenValidator
from shared.errors import DependencyUnavailable
from shared.principal import Principal
from tests.fixtures.oidc import OidcServer
from tests.security.token_corpus import CORPUS, Attack, attack_ids

MakeValidator = Callable[..., TokenValidator]


def _reject_reason(validator: TokenValidator, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        validator.validate(token)
    assert caught.value.status == 401 and caught.value.code == "invalid_token"
    return caught.value.reason


def test_valid_delegated_token_gives_the_principal(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    oid = str(uuid.uuid4())
    principal = make_validator().validate(
        oidc_server.token(roles=["Clinician"], oid=oid, scp="Clinical.Access x")
    )
    assert principal == Principal(
        oid=oid,
        tid=oidc_server.tenant_id,
        azp=oidc_server.client_app,
        scopes=frozenset({"Clinical.Access", "x"}),
        roles=frozenset({"Clinician"}),
    )
    assert not principal.is_app_only


def test_valid_app_token_gives_an_app_only_principal(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    principal = make_validator().validate(oidc_server.app_token())
    assert principal.is_app_only and principal.roles == {"LabSystem"}


def test_v1_style_appid_is_used_when_azp_is_absent(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    client = str(uuid.uuid4())
    principal = make_validator().validate(oidc_server.token(drop=["azp"], appid=client))
    assert principal.azp == client


_TOKEN_LEVEL = [
    a for a in CORPUS if a.reason not in (None, "missing", "query_token", "oversized", "scheme", "shape")
]


@pytest.mark.parametrize("attack", _TOKEN_LEVEL, ids=attack_ids(_TOKEN_LEVEL))
def test_corpus_token_is_rejected_by_the_validator_itself(
    attack: Attack, oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    """Defense in depth: without the bearer pre-checks, the validator alone still refuses each token."""
    token = attack.build(oidc_server).headers["Authorization"].removeprefix("Bearer ")
    assert _reject_reason(make_validator(), token) == attack.reason


def test_alg_none_without_signature_is_refused_by_the_validator_too(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    from tests.fixtures.oidc import b64url_json

    token = (
        f"{b64url_json({'alg': 'none', 'kid': oidc_server.signing.kid})}.{b64url_json(oidc_server.claims())}."
    )
    assert _reject_reason(make_validator(), token) == "algorithm"


def test_leeway_accepts_small_skew_only(oidc_server: OidcServer, make_validator: MakeValidator) -> None:
    import time

    validator = make_validator(leeway_seconds=60)
    now = int(time.time())
    validator.validate(oidc_server.token(exp=now - 30))  # within leeway
    validator.validate(oidc_server.token(nbf=now + 30, iat=now + 30))
    assert _reject_reason(validator, oidc_server.token(exp=now - 120)) == "expired"
    assert _reject_reason(make_validator(leeway_seconds=0), oidc_server.token(exp=now - 30)) == "expired"


def test_app_id_uri_audience_only_when_configured(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    uri = f"api://{oidc_server.audience}"
    token = oidc_server.token(aud=uri)
    assert _reject_reason(make_validator(), token) == "audience"
    assert make_validator(app_id_uri=uri).validate(token).oid
    # Configuring the URI does not stop the client id form from working, nor admit look-alikes.
    assert make_validator(app_id_uri=uri).validate(oidc_server.token()).oid
    assert _reject_reason(make_validator(app_id_uri=uri), oidc_server.token(aud=uri + "/")) == "audience"


def test_multi_tenant_substitutes_only_allow_listed_tenants(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    partner = str(uuid.uuid4())
    stranger = str(uuid.uuid4())
    validator = make_validator(allowed_tenants=(partner,))
    partner_iss = f"https://login.microsoftonline.com/{partner}/v2.0"
    assert validator.validate(oidc_server.token(tid=partner, iss=partner_iss)).tid == partner
    # The issuer must be the one for the token's own tid: no mixing tenants.
    assert _reject_reason(validator, oidc_server.token(tid=partner)) == "issuer"
    assert _reject_reason(validator, oidc_server.token(iss=partner_iss)) == "issuer"
    stranger_iss = f"https://login.microsoftonline.com/{stranger}/v2.0"
    assert _reject_reason(validator, oidc_server.token(tid=stranger, iss=stranger_iss)) == "issuer"
    assert _reject_reason(make_validator(), oidc_server.token(tid=partner, iss=partner_iss)) == "issuer"


def test_organizations_metadata_with_tenantid_placeholder(
    oidc_server: OidcServer, make_validator: MakeValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        OidcServer, "issuer", property(lambda s: "https://login.microsoftonline.com/{tenantid}/v2.0")
    )
    partner = str(uuid.uuid4())
    validator = make_validator(allowed_tenants=(partner,))
    home_iss = f"https://login.microsoftonline.com/{oidc_server.tenant_id}/v2.0"
    assert validator.validate(oidc_server.token(iss=home_iss)).tid == oidc_server.tenant_id
    partner_iss = f"https://login.microsoftonline.com/{partner}/v2.0"
    assert validator.validate(oidc_server.token(tid=partner, iss=partner_iss)).tid == partner
    literal = "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert _reject_reason(validator, oidc_server.token(iss=literal)) == "issuer"


def test_client_app_allow_list(oidc_server: OidcServer, make_validator: MakeValidator) -> None:
    allowed = make_validator(allowed_client_apps=(oidc_server.client_app,))
    assert allowed.validate(oidc_server.token()).azp == oidc_server.client_app
    other = make_validator(allowed_client_apps=(str(uuid.uuid4()),))
    assert _reject_reason(other, oidc_server.token()) == "client"
    assert _reject_reason(other, oidc_server.token(drop=["azp"], appid=oidc_server.client_app)) == "client"


def test_guests_only_when_allowed(oidc_server: OidcServer, make_validator: MakeValidator) -> None:
    guest = oidc_server.token(idp=f"https://sts.windows.net/{uuid.uuid4()}/")
    msa = oidc_server.token(idp="live.com")
    for token in (guest, msa, oidc_server.token(acct=1)):
        assert _reject_reason(make_validator(), token) == "guest"
        assert make_validator(allow_guests=True).validate(token).oid
    # An idp naming this very tenant (app-only tokens carry one) is not a guest.
    assert make_validator().validate(
        oidc_server.token(idp=f"https://sts.windows.net/{oidc_server.tenant_id}/")
    )
    assert make_validator().validate(oidc_server.token(acct=0))


def test_scopes_alone_or_roles_alone_are_enough_to_authenticate(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    assert make_validator().validate(oidc_server.token(roles=[])).scopes == {"Clinical.Access"}
    assert make_validator().validate(oidc_server.token(scp=None)).roles


def test_unreachable_provider_at_cold_start_is_503_not_401(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    oidc_server.down = True
    with pytest.raises(DependencyUnavailable) as caught:
        make_validator().validate(oidc_server.token())
    assert caught.value.status == 503 and caught.value.dependency == "jwks"


def test_rejection_carries_no_token_material(
    oidc_server: OidcServer, make_validator: MakeValidator, caplog: pytest.LogCaptureFixture
) -> None:
    token = oidc_server.token(aud="not-ours-aud-canary")
    caplog.set_level("DEBUG")
    with pytest.raises(TokenRejected) as caught:
        make_validator().validate(token)
    assert str(caught.value) == "invalid_token"
    assert caught.value.__suppress_context__, "the PyJWT exception must not be chained into tracebacks"
    assert "canary" not in caplog.text and token[:40] not in caplog.text


def test_a_calling_app_that_is_not_a_guid_is_rejected(
    oidc_server: OidcServer, make_validator: MakeValidator
) -> None:
    """Entra's azp/appid is the client's application id. Anything else used to pass validation and then
    fail every audit record (AuditActor requires a GUID): a 500 on every PHI route, denials unaudited."""
    assert _reject_reason(make_validator(), oidc_server.token(azp="not-a-guid")) == "client"
    assert _reject_reason(make_validator(), oidc_server.token(drop=["azp"], appid="svc")) == "client"
