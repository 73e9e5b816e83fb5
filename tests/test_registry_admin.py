"""The admin for J-LIS staff: onboarding through the services, approve / reject actions,
maintenance windows with notice rules; every change audited; nobody else gets in."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from cardap import services
from cardap.models import AIDSerialCounter, CardAP, MaintenanceWindow, Provider
from operators.models import AuditEntry
from tests import factories
from tests.registry_helpers import request_fields

JST = ZoneInfo("Asia/Tokyo")


def provider_form(p, **changes):
    data = {
        "name": p.name,
        "kind": p.kind,
        "local_gov_code": p.local_gov_code,
        "status": p.status,
        "legal_basis_kind": p.legal_basis_kind,
        "legal_basis_reference": p.legal_basis_reference,
        "legal_basis_date": p.legal_basis_date.isoformat() if p.legal_basis_date else "",
        "contract_reference": p.contract_reference,
        "operations_email": p.operations_email,
        "failure_email": p.failure_email,
        "maintenance_email": p.maintenance_email,
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_jlis_lists_and_searches(world, login):
    client = login(world.jlis)
    for url in [
        "/admin/cardap/provider/?q=テスト市",
        "/admin/cardap/provider/?kind__exact=private",
        "/admin/cardap/cardap/?status__exact=requested",
        "/admin/cardap/maintenancewindow/",
        "/admin/cardap/autoloadpreset/",
        "/admin/cardap/aidallocation/",
        "/admin/cardap/cardapshare/",
        "/admin/cardap/provider/add/",
        "/admin/cardap/maintenancewindow/add/",
    ]:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["city_admin", "shop_operator", "auditor"])
def test_others_cannot_use_the_admin(world, login, who):
    response = login(getattr(world, who)).get("/admin/cardap/provider/")
    assert response.status_code == 403
    assert AuditEntry.objects.filter(action="permission.denied", actor=getattr(world, who).username).exists()


@pytest.mark.django_db
def test_provider_status_goes_through_the_state_machine(world, login):
    client = login(world.jlis)
    p = Provider.objects.create(name="新商店", kind="private")
    url = f"/admin/cardap/provider/{p.pk}/change/"
    response = client.post(url, provider_form(p, status="live"))
    assert (
        response.status_code == 200
        and "「申請中」から「運用中」へは変更できません" in response.content.decode()
    )
    p.refresh_from_db()
    assert p.status == "applied"
    response = client.post(
        url,
        provider_form(
            p,
            status="legal_confirmed",
            legal_basis_kind="minister_confirmation",
            legal_basis_reference="総情第7号",
            legal_basis_date="2027-02-01",
        ),
    )
    assert response.status_code == 302
    p.refresh_from_db()
    assert p.status == "legal_confirmed" and p.legal_basis_reference == "総情第7号"
    # One change, one audit entry (the service's), naming the fields edited with the status.
    entries = AuditEntry.objects.filter(target=f"provider:{p.pk}")
    assert [(e.action, e.actor) for e in entries] == [("provider.status", "jlis")]
    assert entries[0].detail["to"] == "legal_confirmed"
    assert "legal_basis_reference" in entries[0].detail["fields"]


@pytest.mark.django_db
def test_new_provider_must_start_applied(world, login):
    p = Provider(name="x", kind="private")
    response = login(world.jlis).post("/admin/cardap/provider/add/", provider_form(p, status="live"))
    assert response.status_code == 200 and not Provider.objects.filter(name="x").exists()


@pytest.mark.django_db
def test_approve_and_reject_actions(world, login):
    client = login(world.jlis)
    a = services.submit_request(
        provider=world.city, actor=world.city_admin, **request_fields(name="承認するAP")
    )
    b = services.submit_request(
        provider=world.city, actor=world.city_admin, **request_fields(name="却下するAP")
    )
    # Approval asks first: a confirmation page naming the request, nothing approved yet.
    confirm = client.post("/admin/cardap/cardap/", {"action": "approve_selected", "_selected_action": [a.pk]})
    assert confirm.status_code == 200 and "承認するAP" in confirm.content.decode()
    assert 'name="apply"' in confirm.content.decode()
    a.refresh_from_db()
    assert a.status == "requested" and a.aid is None
    response = client.post(
        "/admin/cardap/cardap/", {"action": "approve_selected", "_selected_action": [a.pk], "apply": "1"}
    )
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.status == "approved" and a.aid.startswith("D392F102")
    page = client.post("/admin/cardap/cardap/", {"action": "reject_selected", "_selected_action": [b.pk]})
    assert page.status_code == 200 and "却下するAP" in page.content.decode()
    b.refresh_from_db()
    assert b.status == "requested"
    client.post(
        "/admin/cardap/cardap/",
        {
            "action": "reject_selected",
            "_selected_action": [b.pk],
            "apply": "1",
            "reason": "データ構成の説明が不足しています",
        },
    )
    b.refresh_from_db()
    assert b.status == "rejected" and b.rejection_reason == "データ構成の説明が不足しています"
    page = login(world.city_admin).get(f"/registry/requests/{b.pk}/").content.decode()
    assert "データ構成の説明が不足しています" in page


@pytest.mark.django_db
def test_maintenance_window_in_admin_needs_notice_and_mails_providers(
    world, login, django_capture_on_commit_callbacks
):
    data = {
        "title": "基盤更新",
        "description": "",
        "starts_at_0": "2027-03-05",
        "starts_at_1": "22:00:00",
        "ends_at_0": "2027-03-06",
        "ends_at_1": "02:00:00",
    }
    with time_machine.travel(dt.datetime(2027, 3, 1, 10, tzinfo=JST), tick=False):
        client = login(world.jlis)  # signed in at the frozen time, or the session would have expired
        response = client.post("/admin/cardap/maintenancewindow/add/", data)
        assert response.status_code == 200 and "10営業日前" in response.content.decode()
        assert not MaintenanceWindow.objects.exists()
        with django_capture_on_commit_callbacks() as enqueued:
            response = client.post("/admin/cardap/maintenancewindow/add/", {**data, "urgent": "on"})
        assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.created_by == "jlis" and window.urgent
    # The request only enqueues the notice (mailed by a worker: tests/test_celery.py).
    assert len(enqueued) == 1 and not mail.outbox
    assert AuditEntry.objects.filter(action="maintenance.scheduled").count() == 1


@pytest.mark.django_db
def test_reviewed_card_ap_is_read_only_in_admin(world, login):
    ap = services.approve_request(
        card_ap_id=services.submit_request(
            provider=world.city, actor=world.city_admin, **request_fields()
        ).pk,
        actor=world.jlis,
    )
    page = login(world.jlis).get(f"/admin/cardap/cardap/{ap.pk}/change/").content.decode()
    assert ap.aid in page and 'name="type"' not in page and 'name="name"' in page
    assert CardAP.objects.get(pk=ap.pk).aid == ap.aid


@pytest.mark.django_db
def test_jlis_registers_a_request_for_a_provider_in_the_admin(world, login):
    client = login(world.jlis)
    data = {
        "provider": world.shop.pk,
        "name": "代理登録AP",
        "type": "C",
        "area": "local",
        "purpose": "代理",
        "data_layout": "",
        "structure": "binary",
        "file_size": 32,
        "record_count": "",
        "record_length": "",
        "pin_source": "",
        "pin_min_length": 4,
        "pin_max_length": 8,
        "pin_retry_limit": 3,
        "user_number_source": "generated",
        "user_number_length": 16,
        "user_number_charset": "digits",
        "memory_requested": "",
        "input_format": "",
        "input_file": "",
        "shares-TOTAL_FORMS": 0,
        "shares-INITIAL_FORMS": 0,
        "keys-TOTAL_FORMS": 0,
        "keys-INITIAL_FORMS": 0,
    }
    response = client.post("/admin/cardap/cardap/add/", data)
    assert response.status_code == 200 and "地域住民向け領域は市区町村だけ" in response.content.decode()
    assert not CardAP.objects.exists()
    response = client.post("/admin/cardap/cardap/add/", {**data, "area": "extended"})
    assert response.status_code == 302
    ap = CardAP.objects.get()
    assert ap.provider == world.shop and ap.status == "requested"
    assert AuditEntry.objects.filter(
        action="admin.cardap.add", actor="jlis", provider_id_snapshot=world.shop.pk
    ).exists()


@pytest.mark.django_db
def test_approval_without_a_dap_key_says_so_and_changes_nothing(world, login, settings):
    settings.DEMO = settings.DEBUG = False
    settings.DAP_KEY_PATH = ""
    from operators.keys import DEMO_KEYSTORE_KEY

    settings.KEYSTORE_KEY = DEMO_KEYSTORE_KEY.decode()  # the key that sealed the world's authenticators
    template = (Path(__file__).resolve().parent.parent / "cardap/custom_ap/template.yaml").read_text()
    ap = services.submit_request(
        provider=world.shop,
        actor=world.shop_admin,
        **request_fields(type="custom", input_format="yaml", input_file=template),
    )
    response = login(world.jlis).post(
        "/admin/cardap/cardap/",
        {"action": "approve_selected", "_selected_action": [ap.pk], "apply": "1"},
        follow=True,
    )
    assert "DAP_KEY_PATH" in response.content.decode()
    ap.refresh_from_db()
    assert ap.status == "requested" and ap.aid is None
    assert AIDSerialCounter.objects.get().last_serial == 0  # the serial was not consumed


@pytest.mark.django_db
def test_card_ap_list_shows_status_as_coloured_badge(world, login):

    factories.card_ap(world.city, "図書館カード", status="requested")
    body = login(world.jlis).get("/admin/cardap/cardap/").content.decode()
    assert 'class="status-badge status-requested"' in body  # amber (static/css/admin.css)
    assert "登録依頼中</span>" in body
