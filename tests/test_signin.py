"""Two-factor sign-in (R2.1): password, then a TOTP or backup code; enrolment; lockout; expiry."""

from __future__ import annotations

import re
import time

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from operators.models import AuditEntry
from operators.otp_secrets import hash_backup_code
from tests.conftest import PASSWORD
from tests.otp_helpers import code_for, fresh_cache, rfc6238  # noqa: F401

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("id").values_list("action", flat=True))


def password_step(client: Client, username: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_rfc6238_reference_vector():
    # RFC 6238 appendix B (SHA-1): the helper the tests use is right independently of django-otp.
    assert rfc6238(b"12345678901234567890", 59, digits=8) == "94287082"
    assert rfc6238(b"12345678901234567890", 1111111109, digits=8) == "07081804"


def test_every_page_requires_sign_in(client, world):
    for path in ["/", "/accounts/people/", "/accounts/roster/", "/accounts/audit/", "/admin/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 200


def test_password_then_code_signs_in(client, world):
    response = password_step(client, "city_op")
    assert response.status_code == 302 and response["Location"] == "/accounts/otp/"
    # Password alone is not a sign-in.
    assert client.get("/").status_code == 302
    response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)})
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "ようこそ" in home.content.decode()
    assert actions()[-2:] == ["auth.password_ok", "auth.sign_in"]
    entry = AuditEntry.objects.order_by("-id").first()
    assert (
        entry.actor == "city_op" and entry.ip == "127.0.0.1" and entry.provider_id_snapshot == world.city.pk
    )


def test_next_is_kept_and_foreign_next_ignored(client, world):
    password_step_url = "/accounts/login/?next=/accounts/roster/"
    client.post(password_step_url, {"username": "city_admin", "password": PASSWORD})
    response = client.post("/accounts/otp/", {"code": code_for(world.city_admin)})
    assert response["Location"] == "/accounts/roster/"
    other = Client()
    other.post("/accounts/login/?next=https://evil.example/", {"username": "shop_op", "password": PASSWORD})
    assert other.post("/accounts/otp/", {"code": code_for(world.shop_operator)})["Location"] == "/"


def test_wrong_password_refused_and_audited(client, world):
    response = password_step(client, "city_op", "wrong-password")
    assert response.status_code == 200
    assert "ユーザー名またはパスワードが正しくありません。" in response.content.decode()
    assert actions() == ["auth.password_failed"]
    assert client.get("/").status_code == 302


def test_wrong_password_message_in_english(client, world):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = password_step(client, "city_op", "wrong-password")
    assert "Incorrect username or password." in response.content.decode()


def test_wrong_code_refused_and_audited(client, world):
    password_step(client, "city_op")
    good = code_for(world.city_operator)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/otp/", {"code": wrong})
    assert response.status_code == 200
    assert "確認コードが正しくないか、既に使用済みです" in response.content.decode()
    assert actions()[-1] == "auth.otp_failed"
    assert client.get("/").status_code == 302


def test_replayed_code_refused(world):
    code = code_for(world.city_operator)
    first = Client()
    password_step(first, "city_op")
    assert first.post("/accounts/otp/", {"code": code})["Location"] == "/"
    second = Client()
    password_step(second, "city_op")
    response = second.post("/accounts/otp/", {"code": code})
    assert response.status_code == 200
    assert "既に使用済み" in response.content.decode()
    assert actions()[-1] == "auth.otp_failed"
    assert second.get("/").status_code == 302


def test_repeated_wrong_codes_are_throttled_with_a_wait_message(client, world):
    password_step(client, "city_op")
    client.post("/accounts/otp/", {"code": "000000"})
    response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)})
    assert re.search(r"\d+秒待ってから", response.content.decode())
    assert client.get("/").status_code == 302


def test_backup_code_works_once(world):
    from tests.test_signin import enrol_backup_codes

    codes = enrol_backup_codes(world.city_operator)
    first = Client()
    password_step(first, "city_op")
    assert first.post("/accounts/otp/", {"code": codes[0]})["Location"] == "/"
    assert AuditEntry.objects.order_by("-id").first().detail == {"factor": "backup_code"}
    second = Client()
    password_step(second, "city_op")
    assert second.post("/accounts/otp/", {"code": codes[0]}).status_code == 200
    assert StaticToken.objects.filter(device__user=world.city_operator).count() == len(codes) - 1


def enrol_backup_codes(user) -> list[str]:
    from operators.signin import _new_backup_codes

    return _new_backup_codes(user)


def test_code_step_without_password_step_is_refused(client, world):
    response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)}, follow=True)
    assert "ユーザー名とパスワードから入力し直してください" in response.content.decode()
    assert client.get("/").status_code == 302


def enrolment_secret(page: str) -> bytes:
    import base64

    secret = re.search(r'data-testid="otp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    return base64.b32decode(secret)


def test_first_sign_in_enrols_by_qr_code(client, world):
    TOTPDevice.objects.filter(user=world.shop_operator).delete()
    response = password_step(client, "shop_op")
    assert response["Location"] == "/accounts/enrol/"
    page = client.get("/accounts/enrol/").content.decode()
    assert "<svg" in page and "認証アプリの登録" in page
    key = enrolment_secret(page)
    # The same sign-in shows the same secret.
    assert enrolment_secret(client.get("/accounts/enrol/").content.decode()) == key
    # Showing the page stores nothing: the secret becomes a device only once confirmed.
    assert not TOTPDevice.objects.filter(user=world.shop_operator).exists()
    wrong = client.post(
        "/accounts/enrol/", {"code": "123456" if rfc6238(key, time.time()) != "123456" else "654321"}
    )
    assert wrong.status_code == 200 and not TOTPDevice.objects.filter(user=world.shop_operator).exists()
    assert actions()[-1] == "auth.otp_failed"
    with time_machine.travel(time.time() + 2, tick=False):
        response = client.post("/accounts/enrol/", {"code": rfc6238(key, time.time())})
    assert response.status_code == 200
    body = response.content.decode()
    assert "この画面は一度しか表示されません" in body
    shown = re.findall(r"<li><code>([a-z0-9]+)</code></li>", body)
    assert len(shown) == 10
    device = TOTPDevice.objects.get(user=world.shop_operator)
    assert device.confirmed and device.bin_key == key
    assert client.get("/").status_code == 200
    assert "auth.otp_enrolled" in actions() and actions()[-1] == "auth.sign_in"


def test_enrolment_page_changes_nothing(client, world):
    TOTPDevice.objects.filter(user=world.shop_operator).delete()
    password_step(client, "shop_op")
    before = AuditEntry.objects.count()
    for _ in range(3):
        assert client.get("/accounts/enrol/").status_code == 200
    assert not TOTPDevice.objects.filter(user=world.shop_operator).exists()
    assert AuditEntry.objects.count() == before


def test_an_enrolment_secret_seen_by_someone_else_gives_no_access(world):
    """Whoever knew the initial password and opened the enrolment page first does not keep a
    working authenticator once the real operator enrols."""
    TOTPDevice.objects.filter(user=world.shop_operator).delete()
    # Left over from before: an unconfirmed device whose secret someone may have seen.
    stale = TOTPDevice.objects.create(user=world.shop_operator, name="authenticator", confirmed=False)
    intruder, operator = Client(), Client()
    password_step(intruder, "shop_op")
    seen = enrolment_secret(intruder.get("/accounts/enrol/").content.decode())
    password_step(operator, "shop_op")
    real = enrolment_secret(operator.get("/accounts/enrol/").content.decode())
    assert seen != real and stale.bin_key not in (seen, real)
    operator.post("/accounts/enrol/", {"code": rfc6238(real, time.time())})
    assert operator.get("/").status_code == 200
    assert list(TOTPDevice.objects.filter(user=world.shop_operator).values_list("confirmed", flat=True)) == [
        True
    ]
    # The intruder's secret opens nothing: not its own session, not a new one.
    with time_machine.travel(time.time() + 31, tick=False):
        assert intruder.post("/accounts/enrol/", {"code": rfc6238(seen, time.time())})["Location"] == (
            "/accounts/otp/"
        )
        later = Client()
        password_step(later, "shop_op")
        refused = later.post("/accounts/otp/", {"code": rfc6238(seen, time.time())})
    assert refused.status_code == 200 and later.get("/").status_code == 302


def test_enrolment_not_offered_to_users_with_a_device(client, world):
    password_step(client, "city_op")
    assert client.get("/accounts/enrol/")["Location"] == "/accounts/otp/"


def test_qr_code_encodes_the_pages_secret(client, world):
    """The page's SVG QR code is the QR code of django-otp's otpauth:// URI for the secret shown
    as text (base32 computed here independently)."""
    import base64

    import qrcode
    import qrcode.image.svg

    TOTPDevice.objects.filter(user=world.shop_operator).delete()
    password_step(client, "shop_op")
    page = client.get("/accounts/enrol/").content.decode()
    key = enrolment_secret(page)
    uri = TOTPDevice(user=world.shop_operator, key=key.hex()).config_url
    assert f"secret={base64.b32encode(key).decode()}" in uri
    assert uri.startswith("otpauth://totp/CardAP%3Ashop_op?")
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    path = re.search(r'<path d="([^"]+)"', svg.to_string(encoding="unicode")).group(1)
    assert path in page


def test_lockout_per_account_with_retry_time(world, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    client = Client()
    for _ in range(2):
        password_step(client, "city_op", "bad")
    response = password_step(client, "city_op", "bad")
    body = response.content.decode()
    assert "一時的にロックしています" in body and "（日本時間）以降に再度お試しください" in body
    assert "auth.lockout" in actions()
    # Now even the right password is refused, from any address, and nothing signs in.
    other = Client(REMOTE_ADDR="10.0.0.9")
    response = password_step(other, "city_op", REMOTE_ADDR="10.0.0.9")
    assert "一時的にロックしています" in response.content.decode()
    assert actions()[-1] == "auth.locked_attempt"
    # Other accounts are unaffected from another address.
    assert password_step(Client(), "shop_op", REMOTE_ADDR="10.0.0.8")["Location"] == "/accounts/otp/"
    # The lockout lifts by itself. Redis expires keys on its own clock, which time_machine cannot
    # move, so the lock is short here and the test waits for it (bounded).
    settings.LOCKOUT_SECONDS = 3
    locked_at = time.monotonic()
    for _ in range(3):
        password_step(Client(), "shop_op", "bad", REMOTE_ADDR="10.0.0.6")
    still = password_step(Client(), "shop_op", REMOTE_ADDR="10.0.0.7")
    assert "一時的にロックしています" in still.content.decode()
    while time.monotonic() - locked_at < settings.LOCKOUT_SECONDS + 10:
        time.sleep(0.5)
        if password_step(Client(), "shop_op", REMOTE_ADDR="10.0.0.7").get("Location") == "/accounts/otp/":
            break
    else:
        raise AssertionError("the lockout did not lift")
    assert time.monotonic() - locked_at >= 2


def test_lockout_counts_wrong_codes_too(world, settings):
    settings.LOCKOUT_MAX_FAILURES = 2
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    password_step(client, "city_op")
    client.post("/accounts/otp/", {"code": "000001"})
    response = client.post("/accounts/otp/", {"code": "000002"})
    assert "一時的にロックしています" in response.content.decode()
    response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)})
    assert "一時的にロックしています" in response.content.decode()
    assert client.get("/").status_code == 302


def test_lockout_per_address(world, settings):
    settings.LOCKOUT_MAX_FAILURES = 100
    settings.LOCKOUT_MAX_FAILURES_PER_ADDRESS = 4
    attacker = Client(REMOTE_ADDR="192.0.2.50")
    for name in ["a1", "a2", "a3", "a4"]:
        password_step(attacker, name, "guess", REMOTE_ADDR="192.0.2.50")
    response = password_step(attacker, "city_op", REMOTE_ADDR="192.0.2.50")
    assert "一時的にロックしています" in response.content.decode()
    lock = AuditEntry.objects.filter(action="auth.lockout").get()
    assert lock.detail["subjects"] == ["ip"] and lock.ip == "192.0.2.50"
    # The same account from another address still works.
    assert password_step(Client(), "city_op", REMOTE_ADDR="192.0.2.51")["Location"] == "/accounts/otp/"


def test_session_expires_after_inactivity(world, login):
    client = login(world.city_operator)
    assert client.get("/").status_code == 200
    with time_machine.travel(time.time() + settings.SESSION_COOKIE_AGE + 10, tick=False):
        response = client.get("/accounts/roster/", follow=True)
    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert "セッションの有効期限が切れました" in response.content.decode()
    assert "auth.session_expired" in actions()


def test_activity_keeps_the_session_alive(world, login):
    client = login(world.city_operator)
    start = time.time()
    for minutes in (10, 20, 30):
        with time_machine.travel(start + minutes * 60, tick=False):
            assert client.get("/").status_code == 200


def test_session_without_second_factor_is_refused(client, world):
    client.force_login(world.jlis)  # password-level session only
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "auth.unverified_session" in actions()
    assert client.get("/").status_code == 302


def test_admin_needs_jlis_staff_with_otp(world, login):
    assert login(world.jlis).get("/admin/").status_code == 200
    # Staff flag without the J-LIS role is not enough.
    world.city_admin.is_staff = True
    world.city_admin.save()
    assert login(world.city_admin).get("/admin/").status_code == 403
    assert login(world.auditor).get("/admin/").status_code == 403
    assert actions()[-2:] == ["permission.denied", "permission.denied"]


def test_sign_out_is_audited(world, login):
    client = login(world.city_operator)
    client.post("/accounts/logout/")
    assert actions()[-1] == "auth.sign_out"
    assert client.get("/").status_code == 302


def test_forged_csrf_refused_and_audited(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "city_op", "password": PASSWORD})
    assert response.status_code == 403
    assert "不正な送信です" in response.content.decode()
    assert actions() == ["security.csrf_failure"]
    assert "operators.pre_auth" not in client.session


def test_forged_csrf_message_in_english(world):
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.post("/accounts/login/", {"username": "city_op", "password": PASSWORD})
    assert response.status_code == 403
    assert "invalid submission" in response.content.decode()


def test_reauth_required_for_sensitive_actions(world, login):
    client = login(world.city_admin)
    session = client.session
    session["operators.reauth_at"] = time.time() - settings.REAUTH_SECONDS - 1
    session.save()
    path = f"/accounts/people/{world.city_operator.pk}/scopes/"
    response = client.post(path, {"load__on": "on", "load__all_terminals": "on", "load__all_card_aps": "on"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/")
    assert not world.city_operator.scopes.exists()
    wrong = client.post(response["Location"], {"code": "000000"})
    assert "確認コードが正しくないか" in wrong.content.decode()
    assert actions()[-1] == "auth.reauth_failed"
    with time_machine.travel(time.time() + 31, tick=False):
        ok = client.post(response["Location"], {"code": code_for(world.city_admin)})
        assert ok["Location"] == path
        assert client.get(path).status_code == 200
    assert "auth.reauth" in actions()


def test_backup_codes_can_be_regenerated(world, login):
    old = enrol_backup_codes(world.city_operator)
    client = login(world.city_operator)
    assert client.get("/accounts/backup-codes/").status_code == 200
    body = client.post("/accounts/backup-codes/").content.decode()
    new = re.findall(r"<li><code>([a-z0-9]+)</code></li>", body)
    assert len(new) == 10 and not set(new) & set(old)
    assert set(
        StaticToken.objects.filter(device__user=world.city_operator).values_list("token", flat=True)
    ) == {hash_backup_code(c) for c in new}


def test_personal_numbers_typed_as_username_never_reach_the_audit_log(client, world):
    password_step(client, "123456789012", "whatever")
    password_step(client, "1234-5678-9012", "whatever")
    stored = list(AuditEntry.objects.values_list("actor", "detail"))
    assert len(stored) == 2
    assert "123456789012" not in str(stored) and "9012" not in str(stored)


def test_code_step_expires_after_five_minutes(client, world):
    password_step(client, "city_op")
    with time_machine.travel(time.time() + 301, tick=False):
        response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)}, follow=True)
    assert "ユーザー名とパスワードから入力し直してください" in response.content.decode()


def test_operator_changes_own_password(world, login):
    client = login(world.city_operator)
    bad = client.post(
        "/accounts/password/",
        {
            "old_password": "wrong",
            "new_password1": "another-long-pass-2026",
            "new_password2": "another-long-pass-2026",
        },
    )
    assert bad.status_code == 200
    world.city_operator.refresh_from_db()
    assert world.city_operator.check_password(PASSWORD)
    ok = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-pass-2026",
            "new_password2": "another-long-pass-2026",
        },
    )
    assert ok["Location"] == "/"
    world.city_operator.refresh_from_db()
    assert world.city_operator.check_password("another-long-pass-2026")
    assert client.get("/").status_code == 200  # still signed in on this device
    assert actions()[-1] == "auth.password_changed"


def test_password_change_needs_sign_in(client, world):
    assert client.get("/accounts/password/")["Location"].startswith("/accounts/login/")


def test_client_address_behind_a_trusted_proxy(world, settings):
    from django.test import RequestFactory

    from operators.audit import client_ip

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    assert client_ip(request) == "10.0.0.1"  # no proxy configured: the header is not trusted
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.5"  # the entry the proxy appended, not the spoofable one
    request.META["HTTP_X_FORWARDED_FOR"] = "not-an-address"
    assert client_ip(request) == "10.0.0.1"


# --- one lockout / verify / count implementation behind every step ---


def lock(username, settings):
    from operators import lockout

    settings.LOCKOUT_MAX_FAILURES = 1
    lockout.register_failure(username, None)


def test_every_step_refuses_and_audits_a_locked_attempt(world, settings, login):
    password_step(client := Client(), "city_op")  # the password step passed before the lock
    lock("city_op", settings)
    assert "一時的にロックしています" in client.post("/accounts/otp/", {"code": "000000"}).content.decode()
    TOTPDevice.objects.filter(user=world.shop_operator).delete()
    password_step(enrolling := Client(), "shop_op")
    lock("shop_op", settings)
    enrol = enrolling.post("/accounts/enrol/", {"code": "000000"})
    assert "一時的にロックしています" in enrol.content.decode()
    signed = login(world.city_admin)
    lock("city_admin", settings)
    assert "一時的にロックしています" in signed.post("/accounts/reauth/", {"code": "000000"}).content.decode()
    change = change_password(signed, PASSWORD)
    assert "一時的にロックしています" in change.content.decode()
    world.city_admin.refresh_from_db()
    assert world.city_admin.check_password(PASSWORD)
    locked = AuditEntry.objects.filter(action="auth.locked_attempt")
    actors = sorted(locked.values_list("actor", flat=True))
    assert actors == ["city_admin", "city_admin", "city_op", "shop_op"]


def test_each_throttled_code_is_audited(client, world):
    password_step(client, "city_op")
    client.post("/accounts/otp/", {"code": "000000"})  # wrong: django-otp now throttles
    for _ in range(5):
        response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)})
        assert re.search(r"\d+秒待ってから", response.content.decode())
    assert actions().count("auth.otp_failed") == 1
    assert actions().count("auth.otp_throttled") == 5
    assert client.get("/").status_code == 302


def change_password(client, old, new="another-long-pass-2026"):
    return client.post(
        "/accounts/password/", {"old_password": old, "new_password1": new, "new_password2": new}
    )


def test_wrong_current_passwords_are_audited_and_lock_out(world, login, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    client = login(world.city_operator)
    for _ in range(2):
        assert change_password(client, "wrong").status_code == 200
    assert actions().count("auth.password_change_failed") == 2
    third = change_password(client, "wrong")
    assert "一時的にロックしています" in third.content.decode() and "auth.lockout" in actions()
    # Locked: even the right current password is refused now, and at sign-in too.
    assert "一時的にロックしています" in change_password(client, PASSWORD).content.decode()
    world.city_operator.refresh_from_db()
    assert world.city_operator.check_password(PASSWORD)
    assert "一時的にロックしています" in password_step(Client(), "city_op").content.decode()


def test_a_mismatched_new_password_is_not_counted(world, login):
    client = login(world.city_operator)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-pass-2026",
            "new_password2": "different-2026-pass",
        },
    )
    assert response.status_code == 200 and "auth.password_change_failed" not in actions()


def test_initial_password_must_be_changed_at_first_sign_in(world, login):
    from operators import services

    password = services.reset_password(actor=world.city_admin, operator=world.city_operator)
    client = Client()
    password_step(client, "city_op", password)
    response = client.post("/accounts/otp/", {"code": code_for(world.city_operator)})
    assert response["Location"] == "/accounts/password/"
    assert actions()[-2:] == ["auth.sign_in", "auth.password_change_required"]
    page = client.get("/accounts/password/").content.decode()
    assert 'data-testid="password-change-required"' in page
    # Nothing else opens until then.
    for path in ["/", "/accounts/roster/", "/admin/", "/revocation/keys/"]:
        assert client.get(path)["Location"] == "/accounts/password/", path
    same = change_password(client, password, password)
    assert "現在のパスワードとは異なるパスワードを指定してください。" in same.content.decode()
    assert change_password(client, password)["Location"] == "/"
    assert AuditEntry.objects.filter(action="auth.password_changed").get().detail == {"forced": True}
    world.city_operator.refresh_from_db()
    assert not world.city_operator.must_change_password
    assert client.get("/").status_code == 200


def test_new_operators_must_change_their_initial_password(world):
    from operators import services

    user, _password = services.create_operator(
        actor=world.city_admin, provider_id=world.city.pk, username="newcomer", role="operator"
    )
    assert user.must_change_password


# --- secrets at rest ---


def test_totp_keys_and_backup_codes_are_not_stored_in_clear(world):
    from django.db import connection

    device = TOTPDevice.objects.get(user=world.city_operator)
    plain = device.key
    codes = enrol_backup_codes(world.city_operator)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [device.pk])
        (stored,) = cursor.fetchone()
        cursor.execute(
            "SELECT token FROM otp_static_statictoken t JOIN otp_static_staticdevice d ON t.device_id = d.id"
            " WHERE d.user_id = %s",
            [world.city_operator.pk],
        )
        tokens = {row[0] for row in cursor.fetchall()}
    assert stored.startswith("s1:") and plain not in stored and len(stored) <= 80
    assert len(tokens) == 10 and not tokens & set(codes)
    # django-otp still works on them: the code of the reloaded device, a backup code once.
    assert TOTPDevice.objects.get(pk=device.pk).bin_key == bytes.fromhex(plain)
    client = Client()
    password_step(client, "city_op")
    assert client.post("/accounts/otp/", {"code": codes[3].upper()})["Location"] == "/"


def test_a_sealed_key_moved_to_another_operator_does_not_open(world):
    from django.db import connection

    from operators.otp_secrets import SealedKeyError

    victim = TOTPDevice.objects.get(user=world.city_admin)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [victim.pk])
        (sealed,) = cursor.fetchone()
        cursor.execute(
            "UPDATE otp_totp_totpdevice SET key = %s WHERE user_id = %s", [sealed, world.shop_admin.pk]
        )
    with pytest.raises(SealedKeyError):
        TOTPDevice.objects.get(user=world.shop_admin)


def test_migration_protects_rows_stored_in_clear(world):
    import importlib

    from django.apps import apps
    from django.db import connection
    from django_otp.plugins.otp_static.models import StaticDevice

    migration = importlib.import_module("operators.migrations.0004_authenticator_secrets_at_rest")
    device = TOTPDevice.objects.get(user=world.city_operator)
    plain = device.key
    static = StaticDevice.objects.create(user=world.city_operator, name="backup", confirmed=True)
    with connection.cursor() as cursor:  # as django-otp stored them before
        cursor.execute("UPDATE otp_totp_totpdevice SET key = %s WHERE id = %s", [plain, device.pk])
        cursor.execute(
            "INSERT INTO otp_static_statictoken (device_id, token) VALUES (%s, %s)", [static.pk, "abcd2345"]
        )
    migration.protect(apps, None)
    migration.protect(apps, None)  # a second run changes nothing
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [device.pk])
        assert cursor.fetchone()[0].startswith("s1:")
        cursor.execute("SELECT token FROM otp_static_statictoken WHERE device_id = %s", [static.pk])
        assert cursor.fetchone()[0] == hash_backup_code("abcd2345")
    assert TOTPDevice.objects.get(pk=device.pk).key == plain
