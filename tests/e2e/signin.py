"""Signing in through the browser with a password and the user's current one-time code."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.otp_helpers import code_for


def password_for_server_process(user: Any) -> None:
    """A server in another process checks passwords with the service's own hashers, not the fast
    one the test process uses: store the test password hashed with the default hasher."""
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])


def sign_in(page: Page, base: str, user: Any) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("確認コード")
    page.fill("input[name=code]", code_for(user))
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("ホーム")
