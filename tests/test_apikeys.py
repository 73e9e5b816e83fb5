import pytest
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.test import APIRequestFactory

from cardap.apikeys import ProviderAPIKeyAuthentication, find_key, issue_key, revoke_key, validate_networks


def authenticate(token, addr="127.0.0.1"):
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=addr)
    from rest_framework.request import Request

    return ProviderAPIKeyAuthentication().authenticate(Request(request))


@pytest.mark.django_db
def test_issued_key_authenticates_as_its_provider_and_only_hash_is_stored(world):
    key, token = issue_key(provider=world.city, name="業務システム")
    assert token not in key.key_hash and len(key.key_hash) == 64
    principal, _ = authenticate(token)
    assert principal.provider == world.city


@pytest.mark.django_db
def test_wrong_revoked_and_malformed_keys_refused(world):
    key, token = issue_key(provider=world.city, name="k")
    with pytest.raises(AuthenticationFailed):
        authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert find_key("not-a-key") is None
    revoke_key(key=key)
    with pytest.raises(AuthenticationFailed, match="失効"):
        authenticate(token)


@pytest.mark.django_db
def test_allowlist(world):
    _, token = issue_key(provider=world.shop, name="k", allowed_networks=["192.0.2.0/24"])
    assert authenticate(token, "192.0.2.10")[0].provider == world.shop
    with pytest.raises(PermissionDenied):
        authenticate(token, "198.51.100.1")


def test_validate_networks_names_bad_entry():
    with pytest.raises(ValueError, match="10.0.0.300"):
        validate_networks(["10.0.0.0/8", "10.0.0.300"])
