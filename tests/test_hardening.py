"""Hostile input gets a precise refusal, never a server error, and the refusal is recorded."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from operators.audit import record
from operators.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_nul_bytes_reach_the_audit_log_readably():
    # PostgreSQL refuses NUL in text and jsonb: the writer must clean every value it stores.
    entry = record(action="security.probe", actor="a\x00b", target="t\x00", detail={"k\x00": ["v\x00"]})
    entry.refresh_from_db()
    assert (entry.actor, entry.target, entry.detail) == ("a\\x00b", "t\\x00", {"k\\x00": ["v\\x00"]})
    assert entry.compute_hash() == entry.hash


def test_stale_session_with_a_nul_in_the_path_is_recorded(world):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = "expired-session-key"
    response = client.get("/x%00")
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="auth.session_expired")
    assert entry.detail == {"path": "/x\\x00"}


def test_nul_in_the_roster_provider_is_an_audited_refusal(world, login):
    response = login(world.city_admin).get("/accounts/roster/?provider=%00")
    assert response.status_code == 404  # as for another provider's roster
    assert AuditEntry.objects.filter(action="permission.denied", detail__provider="\\x00").exists()


def test_nul_in_a_registry_path_is_a_refusal(world, login):
    assert login(world.city_operator).get("/registry/custom-ap/%00").status_code == 403
    assert login(world.city_admin).get("/registry/custom-ap/%00").status_code == 404


# --- precise refusals instead of server errors ---


@pytest.mark.parametrize("query", ["date_to=9999-12-31", "date_from=0001-01-01"])
def test_audit_dates_out_of_range_are_form_errors(world, login, query):
    client = login(world.jlis)
    page = client.get(f"/accounts/audit/?{query}")
    assert page.status_code == 200
    assert "2000-01-01 から 2999-12-31 までの日付を指定してください。" in page.content.decode()
    export = client.get(f"/accounts/audit.csv?{query}")
    assert export.status_code == 400
    assert "2000-01-01 から 2999-12-31" in export.content.decode()
    assert not AuditEntry.objects.filter(action="audit.export").exists()


@pytest.mark.parametrize("value", ["²", "١", "99999999999999999999999"])
def test_roster_provider_must_be_ascii_digits(world, login, value):
    response = login(world.jlis).get("/accounts/roster/", {"provider": value})
    assert response.status_code == 404
    assert AuditEntry.objects.filter(action="permission.denied", detail__provider=value[:20]).exists()


def test_audit_csv_is_streamed_with_the_same_columns(world, login):
    from django.http import StreamingHttpResponse

    for n in range(1200):  # more than one chunk
        record(action="test.row", actor=f"u{n}", detail={"名前": "東京"})
    response = login(world.jlis).get("/accounts/audit.csv?encoding=cp932")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=Shift_JIS"
    text = response.getvalue().decode("cp932")
    lines = text.split("\r\n")
    assert lines[0].startswith("番号,日時（日本時間）,実行者")
    assert sum(1 for line in lines if ",test.row," in line) == 1200
    assert AuditEntry.objects.get(action="audit.export").detail == {"rows": 1200}


# --- API keys: client address behind the proxy, re-authentication, no caching ---


def test_api_key_allow_list_uses_the_address_the_proxy_saw(world, settings):
    from rest_framework.test import APIClient

    from cardap.apikeys import issue_key

    settings.TRUSTED_PROXY_COUNT = 1
    _, token = issue_key(provider=world.shop, name="k", allowed_networks=["203.0.113.0/24"])
    client = APIClient(REMOTE_ADDR="10.0.0.1")  # the reverse proxy
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/card-aps/", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 200
    # A spoofed left-most entry does not help a caller outside the list.
    refused = client.get("/api/v1/card-aps/", HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.9")
    assert refused.status_code == 403


def test_issuing_an_api_key_needs_a_recent_code(world, login):
    import time

    from cardap.models import ProviderAPIKey

    client = login(world.city_admin)
    session = client.session
    session["operators.reauth_at"] = time.time() - settings.REAUTH_SECONDS - 1
    session.save()
    response = client.post("/revocation/keys/", {"name": "業務", "allowed_networks": ""})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/reauth/?next=/revocation/keys/"
    assert not ProviderAPIKey.objects.exists()
    # Another role is refused before any code is asked for.
    assert login(world.city_operator).get("/revocation/keys/").status_code == 403


@pytest.mark.parametrize(
    "who,path",
    [
        ("city_admin", "/revocation/keys/"),
        ("city_admin", "/accounts/people/"),
        ("city_admin", "/accounts/roster/"),
        ("city_admin", "/accounts/roster.csv"),
        ("jlis", "/accounts/audit/"),
        ("jlis", "/accounts/audit.csv"),
    ],
)
def test_pages_with_secrets_or_personal_data_are_not_stored(world, login, who, path):
    response = login(getattr(world, who)).get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_a_new_api_key_page_is_not_stored(world, login):
    response = login(world.city_admin).post("/revocation/keys/", {"name": "業務", "allowed_networks": ""})
    assert response.status_code == 200 and "cak_" in response.content.decode()
    assert "no-store" in response["Cache-Control"]


# --- Content-Security-Policy ---

INLINE = r"<script(?![^>]*\bsrc=)[^>]*>|<style[\s>]|\sstyle=|\son[a-z]+=|javascript:"


def test_templates_hold_no_inline_script_or_style():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    found = {
        str(p.relative_to(root)): re.findall(INLINE, p.read_text()) for p in sorted(root.rglob("*.html"))
    }
    assert len(found) > 20
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize(
    "who,path",
    [
        (None, "/accounts/login/"),
        (None, "/nowhere"),
        ("city_admin", "/"),
        ("jlis", "/admin/"),
        (None, "/api/schema/"),
        (None, "/api/docs/"),
    ],
)
def test_every_response_carries_the_policy(world, login, who, path):
    client = login(getattr(world, who)) if who else Client()
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    script = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert script == "script-src 'self'"  # no inline or CDN script on any page


def test_api_docs_are_served_by_the_service_itself(client):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in page
    assert "https://" not in page and "cdn" not in page.lower()


# --- django-otp in Japanese ---


def test_django_otp_admin_sections_read_in_japanese_and_english(world, login):
    client = login(world.jlis)
    page = client.get("/admin/").content.decode()
    assert "認証アプリ（TOTP）" in page and "バックアップコードの組" in page
    assert "Otp_Totp" not in page and "TOTP devices" not in page
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/admin/").content.decode()
    assert "Authenticator apps (TOTP)" in english and "TOTP devices" in english


def test_django_otp_login_strings_read_in_japanese():
    from django.utils import translation

    with translation.override("ja"):
        assert translation.gettext("OTP Token:") == "確認コード:"
        assert translation.gettext("Please enter your OTP token.") == "確認コードを入力してください。"
    with translation.override("en"):
        assert translation.gettext("OTP Token:") == "OTP Token:"
