"""Roster (名簿, R2.3) page and CSV; audit log search, export and chain verification."""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from operators.audit import record
from operators.models import AuditEntry, Operation, OperatorScope, Terminal
from tests.otp_helpers import fresh_cache  # noqa: F401

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def staffed(world):
    term_admin = world.city_terminal_admin
    term_admin.last_name, term_admin.first_name = "端末", "五郎"
    term_admin.save()
    Terminal.objects.create(
        provider=world.city, name="窓口端末1", location="本庁舎1階", administrator=term_admin
    )
    scope = OperatorScope.objects.create(
        operator=world.city_operator, operation=Operation.LOAD, all_terminals=True, all_card_aps=True
    )
    world.city_operator.last_name, world.city_operator.first_name = "窓口", "一郎"
    world.city_operator.save()
    return term_admin, scope


def parse_csv(response, encoding):
    raw = response.getvalue()  # streamed
    if encoding == "utf-8-sig":
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens Japanese text correctly
    return list(csv.reader(io.StringIO(raw.decode(encoding))))


# --- roster ---


def test_roster_page_lists_people_scopes_and_terminal_admins(world, login, staffed):
    body = login(world.city_admin).get("/accounts/roster/").content.decode()
    assert "操作権限者名簿（テスト市）" in body
    assert "窓口 一郎" in body and "端末 五郎" in body and "窓口端末1（本庁舎1階）" in body
    assert "shop_op" not in body


def test_roster_csv_utf8_bom_and_shift_jis(world, login, staffed):
    client = login(world.city_admin)
    response = client.get("/accounts/roster.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = parse_csv(response, "utf-8-sig")
    assert rows[0][:4] == ["サービス提供者", "ユーザー名", "氏名", "役割"]
    by_user = {r[1]: r for r in rows[1:]}
    assert set(by_user) == {"city_admin", "city_op", "city_term", "city_auditor"}
    assert by_user["city_op"][2] == "窓口 一郎" and by_user["city_op"][3] == "操作者"
    assert by_user["city_op"][5] == "搭載［すべての端末／すべてのカードAP］"
    assert by_user["city_term"][6] == "窓口端末1（本庁舎1階）"
    sjis = client.get("/accounts/roster.csv?encoding=cp932")
    assert sjis["Content-Type"] == "text/csv; charset=Shift_JIS"
    assert parse_csv(sjis, "cp932") == rows
    assert AuditEntry.objects.filter(action="roster.export", actor="city_admin").count() == 2


def test_roster_allowed_roles(world, login, staffed):
    term_admin, _ = staffed
    assert login(term_admin).get("/accounts/roster/").status_code == 200
    jlis = login(world.jlis)
    assert "テスト商店" in jlis.get(f"/accounts/roster/?provider={world.shop.pk}").content.decode()
    assert login(world.auditor).get(f"/accounts/roster/?provider={world.city.pk}").status_code == 200


def test_roster_forbidden_role(world, login):
    response = login(world.city_operator).get("/accounts/roster.csv")
    assert response.status_code == 403 and "名簿を閲覧する権限がありません" in response.content.decode()


def test_roster_of_other_provider_refused(world, login, staffed):
    response = login(world.shop_admin).get(f"/accounts/roster.csv?provider={world.city.pk}")
    assert response.status_code == 404  # like a provider that does not exist
    entry = AuditEntry.objects.get(action="permission.denied", actor="shop_admin")
    assert entry.detail["reason"] == "other_provider" and entry.detail["provider"] == str(world.city.pk)
    assert not AuditEntry.objects.filter(action="roster.export").exists()


# --- audit log ---


@pytest.fixture
def history(world):
    with time_machine.travel(dt.datetime(2026, 4, 1, 23, 30, tzinfo=JST), tick=False):
        record(action="auth.sign_in", actor=world.city_operator, ip="192.0.2.1")
    with time_machine.travel(dt.datetime(2026, 4, 2, 0, 30, tzinfo=JST), tick=False):  # 2026-04-01 15:30 UTC
        record(
            action="auth.password_failed", actor="mallory", detail={"username": "mallory"}, ip="198.51.100.7"
        )
        record(
            action="operator.permission_change",
            actor=world.shop_admin,
            target="shop_op",
            detail={"changes": {"role": ["operator", "terminal_admin"]}},
        )


def rows_of(response):
    return [r for r in parse_csv(response, "utf-8-sig")[1:]]


def test_audit_search_by_jst_date_actor_action_text(world, login, history):
    client = login(world.jlis)
    day2 = rows_of(client.get("/accounts/audit.csv?date_from=2026-04-02&date_to=2026-04-02"))
    assert [r[4] for r in day2] == ["operator.permission_change", "auth.password_failed"]
    day1 = rows_of(client.get("/accounts/audit.csv?date_from=2026-04-01&date_to=2026-04-01"))
    assert [r[4] for r in day1] == ["auth.sign_in"] and day1[0][1] == "2026-04-01 23:30:00"
    assert [r[2] for r in rows_of(client.get("/accounts/audit.csv?actor=mallory"))] == ["mallory"]
    assert [r[4] for r in rows_of(client.get("/accounts/audit.csv?action=auth.&date_to=2026-04-30"))] == [
        "auth.password_failed",
        "auth.sign_in",
    ]
    assert [r[4] for r in rows_of(client.get("/accounts/audit.csv?text=terminal_admin"))] == [
        "operator.permission_change"
    ]
    page = client.get("/accounts/audit/?actor=mallory").content.decode()
    assert "198.51.100.7" in page and "192.0.2.1" not in page
    assert "パスワード誤り" in page and "auth.password_failed" in page  # readable label beside the code


def test_audit_search_rejects_reversed_dates(world, login, history):
    body = login(world.jlis).get("/accounts/audit/?date_from=2026-04-03&date_to=2026-04-01").content.decode()
    assert "開始日は終了日以前の日付にしてください" in body


def test_provider_auditor_sees_only_own_provider(world, login, history):
    rows = rows_of(login(world.city_auditor).get("/accounts/audit.csv?date_to=2026-04-30"))
    assert [r[4] for r in rows] == ["auth.sign_in"]
    assert all(r[3] == str(world.city.pk) for r in rows)
    # The J-LIS-side auditor sees every provider's entries.
    assert len(rows_of(login(world.auditor).get("/accounts/audit.csv?date_to=2026-04-30"))) == 3


def test_audit_forbidden_roles(world, login, history):
    for user in (world.city_admin, world.city_operator, world.shop_admin):
        response = login(user).get("/accounts/audit/")
        assert (
            response.status_code == 403 and "監査ログを閲覧する権限がありません" in response.content.decode()
        )
        assert login(user).get("/accounts/audit.csv").status_code == 403


def test_verify_audit_passes_on_intact_chain(world, history, capsys):
    call_command("verify_audit")
    assert "audit log intact: 3 entries" in capsys.readouterr().out


def test_verify_audit_names_an_altered_entry(world, history, capsys):
    victim = AuditEntry.objects.get(action="auth.password_failed")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditEntry._meta.db_table} SET actor = %s WHERE id = %s", ["someone", victim.id]
        )
    with pytest.raises(CommandError, match="FAILED: 1 problem"):
        call_command("verify_audit")
    err = capsys.readouterr().err
    assert f"entry {victim.id}: content altered" in err
    assert err.count("entry ") == 1


def test_verify_audit_names_a_deleted_entry(world, history, capsys):
    ids = list(AuditEntry.objects.order_by("id").values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE id = %s", [ids[1]])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"entry {ids[1]}: deleted" in capsys.readouterr().err


def test_verify_audit_detects_truncation_against_a_recorded_head(world, history, capsys):
    call_command("verify_audit")
    head = capsys.readouterr().out.split("head: ")[1].split()[0]
    last = AuditEntry.objects.order_by("-id").first()
    assert head == f"{last.id}:{last.hash}"
    call_command("verify_audit", "--expect-head", head)  # nothing cut: passes
    # Cutting off the newest entry leaves a valid chain; only the recorded head reveals it.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE id = %s", [last.id])
    call_command("verify_audit")
    with pytest.raises(CommandError, match="FAILED: 1 problem"):
        call_command("verify_audit", "--expect-head", head)
    assert f"entry {last.id}: deleted" in capsys.readouterr().err


def test_verify_audit_rejects_a_malformed_head(world, history):
    with pytest.raises(CommandError, match="ID:HASH"):
        call_command("verify_audit", "--expect-head", "12:abc")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_exit_status(world, history, tmp_path):
    """As an operator runs it: a non-zero exit status from the real command line."""
    import os
    import subprocess
    import sys

    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:memorydb"):
        pytest.skip("in-memory test database is not visible to a subprocess")
    victim = AuditEntry.objects.order_by("id").first()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEntry._meta.db_table} SET target = 'x' WHERE id = %s", [victim.id])
    env = {**os.environ, "DATABASE_URL": _url_of_test_db()}
    done = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and f"entry {victim.id}: content altered" in done.stderr


def _url_of_test_db() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
        return f"postgres://{auth}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


def test_audit_log_cannot_be_changed_through_the_orm(world, history):
    entry = AuditEntry.objects.first()
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()


def test_audit_page_shows_details_as_key_value_pairs(world, login, history):
    body = login(world.jlis).get("/accounts/audit/?text=terminal_admin").content.decode()
    import html

    assert '<dt>changes.role</dt><dd>["operator", "terminal_admin"]</dd>' in html.unescape(body)
    assert '{"changes"' not in html.unescape(body) and "{'changes'" not in html.unescape(body)


@pytest.mark.django_db(transaction=True)
def test_an_append_inside_a_transaction_adds_no_savepoint_to_the_serial_section(world):
    """The chain's lock is held from the append to the commit: an append inside the caller's
    transaction sends only the lock, the head and the INSERT (no SAVEPOINT / RELEASE round trips),
    and the entry still commits or rolls back with the caller's work."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from operators.audit import verify_chain

    with transaction.atomic(), CaptureQueriesContext(connection) as sent:
        record(action="test.append", actor="system", target="t1")
    statements = [q["sql"].split()[0].upper() for q in sent.captured_queries]
    assert not [s for s in statements if s in ("SAVEPOINT", "RELEASE")], statements
    with pytest.raises(RuntimeError), transaction.atomic():
        record(action="test.rolled_back", actor="system", target="t2")
        raise RuntimeError
    assert list(AuditEntry.objects.values_list("action", flat=True).filter(action__startswith="test.")) == [
        "test.append"
    ]
    assert verify_chain() == []
