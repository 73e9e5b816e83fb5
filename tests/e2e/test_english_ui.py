"""The English UI shows no Japanese text except the names people and providers gave things."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests import factories
from tests.conftest import PASSWORD
from tests.otp_helpers import code_for, fresh_cache  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Hiragana, katakana, CJK ideographs, CJK punctuation and full-width forms (（）、＋ …).
JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def japanese_left(text: str, proper_nouns: list[str]) -> list[str]:
    """The lines of `text` that still hold Japanese once the given proper nouns are removed."""
    for noun in sorted(proper_nouns, key=len, reverse=True):
        text = text.replace(noun, "")
    return [line for line in text.splitlines() if JAPANESE.search(line)]


def test_provider_admin_sees_english_home_and_request_list(page: Page, live_server, world):
    admin = world.city_admin
    admin.first_name, admin.last_name = "花子", "市役所"
    admin.save(update_fields=["first_name", "last_name"])
    factories.card_ap(world.city, "テスト市 図書館カード")
    factories.card_ap(
        world.city, "テスト市 住民カード", type="A", area="local", purpose="住民サービス", status="requested"
    )
    proper_nouns = [
        world.city.name, "市役所 花子", "花子", "市役所", "テスト市 図書館カード", "テスト市 住民カード",
        "日本語",  # the language switcher names each language in itself
    ]

    page.goto(f"{live_server.url}/accounts/login/")
    page.select_option("select[name=language]", "en")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("input[name=username]", "city_admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Verification code")
    page.fill("input[name=code]", code_for(admin))
    page.click("button[type=submit].primary")

    expect(page.locator("h1")).to_have_text("Home")
    nav = page.locator("nav.mainnav")
    expect(nav).to_contain_text("Card AP registration requests")
    assert japanese_left(page.locator("body").inner_text(), proper_nouns) == []

    nav.get_by_role("link", name="Card AP registration requests").click()
    expect(page.locator("h1")).to_contain_text("Card AP registration requests")
    expect(nav.locator("[aria-current=page]")).to_have_text("Card AP registration requests")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(2)
    assert japanese_left(page.locator("body").inner_text(), proper_nouns) == []


def test_japanese_is_still_the_default(page: Page, live_server, world):
    # The check above must be able to fail: the same pages in Japanese are full of Japanese.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "city_admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.fill("input[name=code]", code_for(world.city_admin))
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("ホーム")
    left = japanese_left(page.locator("nav.mainnav").inner_text(), [world.city.name, "日本語"])
    assert "カードAP登録依頼" in left
