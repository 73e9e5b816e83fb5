"""Screens as finished as the home page: one title format, the language menu, forms without a
preselected powerful role, the operators list, the registration request detail, no inline script
or style (a strict Content-Security-Policy must not break a page)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap import services
from operators.models import Operation, OperatorScope
from tests.registry_helpers import request_fields

ROOT = Path(__file__).resolve().parent.parent
APPS = ("templates", "operators", "cardap", "revocation")
TEMPLATES = [p for d in APPS for p in (ROOT / d).rglob("*.html")]


def test_templates_hold_no_inline_script_or_style():
    offenders = []
    for path in TEMPLATES:
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\sstyle=\"", r"\son[a-z]+=\""):
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(pattern, text)]
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path,title",
    [("/", "ホーム"), ("/accounts/people/", "操作者の管理"), ("/accounts/people/new/", "操作者を追加"),
     ("/registry/requests/new/", "カードAP登録依頼書"), ("/accounts/password/", "パスワードの変更")],
)
def test_every_title_is_page_then_service(world, login, path, title):
    body = login(world.city_admin).get(path).content.decode()
    assert re.search(r"<title>(.*?)</title>", body, re.S).group(1) == f"{title} — カードAP搭載システム"


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ja", "en"])
def test_language_menu_names_each_language_in_itself(client, language):
    client.cookies["django_language"] = language
    body = client.get("/accounts/login/").content.decode()
    options = re.findall(r'<option value="(\w+)" lang="\w+"[^>]*>([^<]+)</option>', body)
    assert options == [("ja", "日本語"), ("en", "English")]


@pytest.mark.django_db
def test_new_operator_form_has_no_preselected_role(world, login):
    body = login(world.city_admin).get("/accounts/people/new/").content.decode()
    select = re.search(r'<select name="role".*?</select>', body, re.S).group(0)
    options = re.findall(r'<option value="(\w*)"([^>]*)>', select)
    assert options[0][0] == ""  # "please choose" comes first
    assert [value for value, attrs in options if "selected" in attrs] in ([], [""])
    assert "必須" in body  # required fields are marked


@pytest.mark.django_db
def test_operators_list_shows_enrolment_and_operations_in_form_order(world, login):
    TOTPDevice.objects.filter(user=world.city_operator).delete()
    for op in (Operation.MOVE_IN, Operation.DIAGNOSE, Operation.LOAD, Operation.DELETE):  # stored shuffled
        OperatorScope.objects.create(operator=world.city_operator, operation=op, all_terminals=True,
                                     all_card_aps=True)
    body = login(world.city_admin).get("/accounts/people/").content.decode()
    row = re.search(r"<tr>\s*<td>city_op</td>.*?</tr>", body, re.S).group(0)
    assert "認証アプリ未登録" in row
    assert re.findall(r'<span class="chip">([^<]+)</span>', row) == ["搭載", "削除", "障害診断", "転入処理"]
    admin_row = re.search(r"<tr>\s*<td>city_admin</td>.*?</tr>", body, re.S).group(0)
    assert "認証アプリ未登録" not in admin_row


@pytest.mark.django_db
def test_request_detail_shows_everything_the_provider_entered(world, login):
    ap = services.submit_request(
        provider=world.city, actor=world.city_admin,
        **request_fields(type="A", name="住民カード", data_layout="氏名 32バイト\n住所 64バイト",
                         record_count=6, record_length=48, pin_source="holder", memory_requested=900),
    )
    body = login(world.city_admin).get(f"/registry/requests/{ap.pk}/").content.decode()
    entered = ("レコード", "6", "48 バイト", "氏名 32バイト\n住所 64バイト", "900", "4〜8桁",
               "利用者が設定する暗証番号")
    for shown in entered:
        assert shown in body, shown


def test_aids_are_grouped_for_reading():
    from operators.templatetags.operators_extras import grouped_hex

    html = str(grouped_hex("D392F1027F000002"))
    assert html == ('<code class="hex" title="D392F1027F000002"><span>D392</span><span>F102</span>'
                    "<span>7F00</span><span>0002</span></code>")
    assert grouped_hex("") == "—"
