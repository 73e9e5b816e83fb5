"""Provider-facing registry pages: each for the allowed role, a forbidden role and another provider."""

import pytest

from cardap.models import AutoLoadPreset, CardAP
from operators.models import AuditEntry
from tests import factories
from tests.registry_helpers import request_fields

CUSTOM = """format: 1
name: 図書館カード
files:
  - fid: "0001"
    structure: binary
    size: 70000
    read: free
    update: personalisation
user_number: {fid: "0001", length: 16, charset: digits}
"""


def post_request(client, **fields):
    data = {k: ("" if v is None else v) for k, v in request_fields(**fields).items()}
    data.setdefault("user_number_source", "generated")
    data.setdefault("pin_min_length", 4)
    data.setdefault("pin_max_length", 8)
    data.setdefault("pin_retry_limit", 3)
    return client.post("/registry/requests/new/", data)


@pytest.mark.django_db
def test_provider_admin_submits_and_follows_a_request(world, login):
    client = login(world.city_admin)
    assert client.get("/registry/requests/new/").status_code == 200
    response = post_request(client, type="A", area="local")
    ap = CardAP.objects.get(provider=world.city)
    assert response.status_code == 302 and response["Location"] == f"/registry/requests/{ap.pk}/"
    assert ap.status == "requested" and ap.requested_by == "city_admin" and ap.aid is None
    page = client.get(f"/registry/requests/{ap.pk}/").content.decode()
    assert "テストA型" in page and "登録依頼中" in page
    assert "テストA型" in client.get("/registry/requests/").content.decode()
    assert AuditEntry.objects.filter(action="card_ap.requested", actor="city_admin").exists()


@pytest.mark.django_db
def test_private_business_cannot_request_the_local_area(world, login):
    response = post_request(login(world.shop_admin), type="C", area="local")
    assert response.status_code == 400
    assert not CardAP.objects.exists()


@pytest.mark.django_db
def test_wrong_area_refused_by_the_service_with_a_precise_message(world):
    from django.core.exceptions import ValidationError

    from cardap import services

    with pytest.raises(ValidationError, match="地域住民向け領域は市区町村だけ"):
        services.submit_request(provider=world.shop, actor=world.shop_admin, **request_fields(area="local"))
    with pytest.raises(ValidationError, match="他のサービス提供者"):
        services.submit_request(provider=world.city, actor=world.shop_admin, **request_fields())
    assert not CardAP.objects.exists()


@pytest.mark.django_db
def test_bad_custom_input_file_shown_with_its_line(world, login):
    response = post_request(login(world.shop_admin), type="custom", input_format="yaml", input_file=CUSTOM)
    assert response.status_code == 400
    assert "6行目: files[0].size: 70000 は上限 32767 を超えています。" in response.content.decode()
    assert not CardAP.objects.exists()


@pytest.mark.django_db
def test_custom_input_file_can_be_uploaded(world, login):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = login(world.shop_admin)
    data = {k: ("" if v is None else v) for k, v in request_fields(type="custom").items()}
    data.update(
        user_number_source="generated",
        pin_min_length=4,
        pin_max_length=8,
        pin_retry_limit=3,
        input_upload=SimpleUploadedFile("card.yaml", CUSTOM.replace("70000", "32").encode()),
    )
    assert client.post("/registry/requests/new/", data).status_code == 302
    ap = CardAP.objects.get()
    assert ap.input_format == "yaml" and "図書館カード" in ap.input_file and ap.user_number_length == 16


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["city_operator", "jlis", "auditor"])
def test_forbidden_roles(world, login, who):
    client = login(getattr(world, who))
    for url in ["/registry/requests/", "/registry/requests/new/", "/registry/presets/"]:
        assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/registry/requests/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_unverified_second_factor_is_not_enough(world, client):
    client.force_login(world.city_admin)
    assert client.get("/registry/requests/").status_code == 302


@pytest.mark.django_db
def test_other_providers_request_is_not_found(world, login):
    from cardap import services

    ap = services.submit_request(provider=world.city, actor=world.city_admin, **request_fields())
    assert login(world.shop_admin).get(f"/registry/requests/{ap.pk}/").status_code == 404
    assert "テストC型" not in login(world.shop_admin).get("/registry/requests/").content.decode()


@pytest.mark.django_db
def test_template_and_examples_download(world, login):
    response = login(world.shop_admin).get("/registry/custom-ap/template.yaml")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert b"user_number:" in b"".join(response.streaming_content)
    assert login(world.jlis).get("/registry/custom-ap/clinic-card.json").status_code == 200
    assert login(world.shop_operator).get("/registry/custom-ap/template.yaml").status_code == 403
    assert login(world.shop_admin).get("/registry/custom-ap/..%2Fsettings.py").status_code == 404


@pytest.mark.django_db
def test_presets_pages(world, login):
    mine = factories.card_ap(world.shop, "店舗AP")
    theirs = factories.card_ap(world.city, "市のAP")
    client = login(world.shop_admin)
    page = client.get("/registry/presets/new/").content.decode()
    assert "店舗AP" in page and "市のAP" not in page
    assert client.post("/registry/presets/new/", {"name": "窓口", "card_aps": [mine.pk]}).status_code == 302
    preset = AutoLoadPreset.objects.get(provider=world.shop)
    assert client.post("/registry/presets/new/", {"name": "不正", "card_aps": [theirs.pk]}).status_code == 400
    assert login(world.city_admin).get(f"/registry/presets/{preset.pk}/").status_code == 404
    assert login(world.city_admin).post(f"/registry/presets/{preset.pk}/delete/").status_code == 404
    assert login(world.shop_operator).post(f"/registry/presets/{preset.pk}/delete/").status_code == 403
    assert client.post(f"/registry/presets/{preset.pk}/delete/").status_code == 302
    assert not AutoLoadPreset.objects.exists()


@pytest.mark.django_db
def test_request_page_shows_the_memory_it_will_take(world, login):
    from cardap import services

    ap = services.submit_request(provider=world.shop, actor=world.shop_admin, **request_fields())
    page = login(world.shop_admin).get(f"/registry/requests/{ap.pk}/").content.decode()
    # type C, binary 64: 64 + (32 + 16 user number bytes) + (32 + 64) = 208 of the extended area's 16384
    assert "208 / 16384" in page


@pytest.mark.django_db
def test_list_shows_card_aps_used_as_affiliate(world, login):
    import datetime as dt

    from cardap import services

    city_ap = factories.card_ap(world.city, "市の広域AP")
    services.add_share(
        card_ap=city_ap, provider=world.shop, role="affiliate", since=dt.date(2020, 1, 1), actor=world.jlis
    )
    page = login(world.shop_admin).get("/registry/requests/").content.decode()
    assert "市の広域AP" in page and city_ap.aid in page and "加盟店等（利用のみ）" in page
    # The representative sees it among its own requests, not as a card AP it uses.
    assert (
        "共同利用・加盟店として利用するカードAP"
        not in login(world.city_admin).get("/registry/requests/").content.decode()
    )
