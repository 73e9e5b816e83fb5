"""Sign-in, enrolment, lockout, language switch and roster download in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.otp_helpers import code_for, fresh_cache, rfc6238  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# Outside test-results/, which pytest-playwright empties at the start of every session.
SHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screens"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def password_step(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit].primary")


def test_full_sign_in_with_password_and_code(page: Page, live_server, world):
    password_step(page, live_server.url, "city_admin")
    shot(page, "01-sign-in-code-step")
    expect(page.locator("h1")).to_have_text("確認コード")
    page.fill("input[name=code]", code_for(world.city_admin))
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("ホーム")
    expect(page.locator(".tiles")).to_contain_text("操作者の管理")
    shot(page, "02-dashboard-provider-admin")


def test_sign_in_page_screenshot(page: Page, live_server, world):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    expect(page.locator("h1")).to_have_text("サインイン")
    shot(page, "00-sign-in")


def test_first_sign_in_enrols_authenticator_by_qr_code(page: Page, live_server, world):
    TOTPDevice.objects.filter(user=world.city_operator).delete()
    password_step(page, live_server.url, "city_op")
    expect(page.locator("h1")).to_have_text("認証アプリの登録")
    expect(page.locator("figure.qr svg")).to_be_visible()
    shot(page, "03-enrolment")
    # An independent QR decoder (zbar) reads django-otp's otpauth:// URI from the rendered page.
    assert not TOTPDevice.objects.filter(user=world.city_operator).exists()  # stored once confirmed
    secret = page.locator("[data-testid=otp-secret]").inner_text().replace(" ", "")
    import base64

    key = base64.b32decode(secret)
    zbarimg = shutil.which("zbarimg")
    if zbarimg:
        image = SHOTS / "03-enrolment-qr.png"
        page.locator("figure.qr").screenshot(path=str(image))
        decoded = subprocess.run(
            [zbarimg, "--raw", "-q", str(image)], capture_output=True, text=True, timeout=30
        )
        assert decoded.stdout.strip() == TOTPDevice(user=world.city_operator, key=key.hex()).config_url
    page.fill("input[name=code]", rfc6238(key, time.time()))
    page.click("button[type=submit].primary")
    codes = page.locator("[data-testid=backup-codes] code")
    expect(codes).to_have_count(10)
    shot(page, "04-backup-codes")
    page.click("a.button.primary")
    expect(page.locator("h1")).to_have_text("ホーム")
    assert TOTPDevice.objects.get(user=world.city_operator).confirmed


def test_lockout_message(page: Page, live_server, world, settings):
    settings.LOCKOUT_MAX_FAILURES = 3
    for _ in range(3):
        password_step(page, live_server.url, "shop_op", "wrong-password")
    alert = page.locator("p.error[role=alert]")
    expect(alert).to_contain_text("一時的にロックしています")
    expect(alert).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}（日本時間）以降"))
    shot(page, "05-lockout")
    password_step(page, live_server.url, "shop_op")  # the right password is refused while locked
    expect(page.locator("p.error[role=alert]")).to_contain_text("一時的にロックしています")


def test_language_switch_to_english(page: Page, live_server, world):
    page.goto(f"{live_server.url}/accounts/login/")
    page.select_option("select[name=language]", "en")
    expect(page.locator("h1")).to_have_text("Sign in")
    password_step(page, live_server.url, "city_op", "wrong-password")
    expect(page.locator("p.error[role=alert]")).to_have_text("Incorrect username or password.")
    shot(page, "06-sign-in-english")


def test_roster_download(page: Page, live_server, world):
    password_step(page, live_server.url, "city_admin")
    page.fill("input[name=code]", code_for(world.city_admin))
    page.click("button[type=submit].primary")
    page.click("a.tile[href='/accounts/roster/']")
    expect(page.locator("h1")).to_contain_text("操作権限者名簿（テスト市）")
    shot(page, "07-roster")
    with page.expect_download() as info:
        page.click("[data-testid=roster-csv]")
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("サービス提供者,ユーザー名,氏名,役割")
    assert "city_op" in text and "shop_op" not in text
