"""The Content-Security-Policy blocks nothing the pages need: the main pages, in Chromium, log
no CSP violation (or any other console error), and their own behaviour still works."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from cardap.models import CardAP
from tests import factories
from tests.e2e.signin import sign_in
from tests.otp_helpers import fresh_cache  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return problems





def visit(page: Page, url: str, problems: list[str]) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}, url
    page.wait_for_load_state("networkidle")
    assert problems == [], (url, problems)


def test_provider_admin_pages_under_the_policy(page: Page, live_server, world):
    problems = watch(page)
    visit(page, f"{live_server.url}/accounts/login/", problems)
    sign_in(page, live_server.url, world.city_admin)
    ap = factories.card_ap(world.city, "市の広域AP")
    request = CardAP.objects.get(pk=ap.pk)
    for path in [
        "/",
        "/accounts/people/",
        "/accounts/terminals/",
        "/accounts/roster/",
        "/accounts/password/",
        "/registry/requests/",
        "/registry/requests/new/",
        f"/registry/requests/{request.pk}/",
        "/registry/presets/",
        "/revocation/",
        "/revocation/keys/",
    ]:
        visit(page, f"{live_server.url}{path}", problems)
    # The language switch (a script file now, no inline handler) still submits.
    page.select_option("select[name=language]", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert problems == []


def test_staff_pages_admin_and_api_docs_under_the_policy(page: Page, live_server, world):
    problems = watch(page)
    sign_in(page, live_server.url, world.jlis)
    for path in ["/accounts/audit/", "/accounts/roster/", "/admin/", "/admin/cardap/cardap/"]:
        visit(page, f"{live_server.url}{path}", problems)
    # The self-hosted Redoc renders the schema. Its footer always asks a public CDN for a logo:
    # the policy blocks exactly that (Redoc then hides the image), and nothing else.
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator("h1").first).to_contain_text("Card AP loading service API")
    page.wait_for_load_state("networkidle")
    assert len(problems) == 1 and "https://cdn.redoc.ly/redoc/logo-mini.svg" in problems[0], problems
    assert "violates the following Content Security Policy directive" in problems[0]
    problems.clear()
    # The roster's provider selector submits on change without an inline handler.
    page.goto(f"{live_server.url}/accounts/roster/")
    page.select_option("select[name=provider]", str(world.shop.pk))
    page.wait_for_url(f"**/accounts/roster/?provider={world.shop.pk}")
    assert problems == []
