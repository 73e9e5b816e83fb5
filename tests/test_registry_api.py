"""Read-only REST API of card APs for providers' business systems, and its OpenAPI schema."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from cardap import services
from cardap.apikeys import issue_key
from tests import factories


def api(provider):
    _key, token = issue_key(provider=provider, name="業務システム")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_provider_sees_its_own_and_shared_card_aps_only(world):
    mine = factories.card_ap(world.shop, "店舗AP")
    city_ap = factories.card_ap(world.city, "市の広域AP")
    city_local = factories.card_ap(world.city, "市の住民向けAP", area="local")
    services.add_share(
        card_ap=city_ap, provider=world.shop, role="affiliate", since=dt.date(2020, 1, 1), actor=world.jlis
    )
    body = api(world.shop).get("/api/v1/card-aps/").json()
    by_aid = {row["aid"]: row for row in body["results"]}
    assert set(by_aid) == {mine.aid, city_ap.aid}
    assert by_aid[mine.aid]["relationship"] == "representative"
    assert (
        by_aid[city_ap.aid]["relationship"] == "affiliate" and by_aid[city_ap.aid]["provider"] == "テスト市"
    )
    assert city_local.aid not in by_aid
    assert api(world.shop).get(f"/api/v1/card-aps/{mine.aid}/").json()["name"] == "店舗AP"
    assert api(world.shop).get(f"/api/v1/card-aps/{city_local.aid}/").status_code == 404


@pytest.mark.django_db
def test_requests_not_yet_approved_are_not_listed(world):
    from tests.registry_helpers import request_fields

    services.submit_request(provider=world.shop, actor=world.shop_admin, **request_fields())
    assert api(world.shop).get("/api/v1/card-aps/").json()["results"] == []


@pytest.mark.django_db
def test_no_key_or_operator_session_is_refused(world, login):
    assert APIClient().get("/api/v1/card-aps/").status_code in (401, 403)
    # A signed-in operator's browser session is not an API credential.
    assert login(world.shop_admin).get("/api/v1/card-aps/").status_code in (401, 403)


@pytest.mark.django_db
def test_api_is_read_only(world):
    mine = factories.card_ap(world.shop, "店舗AP")
    client = api(world.shop)
    assert client.post("/api/v1/card-aps/", {"name": "x"}).status_code == 405
    assert client.delete(f"/api/v1/card-aps/{mine.aid}/").status_code == 405


@pytest.mark.django_db
def test_openapi_schema_documents_the_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/card-aps/" in schema["paths"]
    assert "/api/v1/card-aps/{aid}/" in schema["paths"]
    assert schema["paths"]["/api/v1/card-aps/"]["get"]["summary"] == "List your card APs"


@pytest.mark.django_db
def test_openapi_schema_documents_the_api_key(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["providerApiKey"]["scheme"] == "bearer"
    assert {"providerApiKey": []} in schema["paths"]["/api/v1/card-aps/"]["get"]["security"]


@pytest.mark.django_db
def test_page_size_and_offset_are_bounded(world):
    for n in range(3):
        factories.card_ap(world.shop, f"店舗AP{n}")
    client = api(world.shop)
    assert len(client.get("/api/v1/card-aps/?limit=1000").json()["results"]) == 3
    assert client.get("/api/v1/card-aps/?limit=2&offset=2").json()["previous"].endswith("limit=2")
    for query, field in [
        ("limit=9223372036854775808", "limit"),
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=²", "limit"),
        ("offset=9223372036854775808", "offset"),
        ("offset=-1", "offset"),
    ]:
        refused = client.get(f"/api/v1/card-aps/?{query}", HTTP_ACCEPT_LANGUAGE="en")
        assert refused.status_code == 400, query
        low, high = (0, 2147483647) if field == "offset" else (1, 1000)
        expected = f"{field} must be a whole number from {low} to {high}."
        assert refused.json() == {field: [expected]}, query
