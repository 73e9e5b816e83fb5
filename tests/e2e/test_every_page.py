"""Every page of every role, in Japanese and in English, on the demo data (`load_demo`), in headless
Chromium at 1280 px. Each page is saved to var/e2e-screens/ and must have:

- the title "page — カードAP搭載システム" (English: "page — Card AP loading service"),
- no horizontal scroll at 1280 px, of the page or of a part of it,
- no console error or uncaught script error,
- in English, no Japanese text except names people gave things (taken from the database).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.db import models
from django.test import RequestFactory
from django.urls import reverse
from playwright.sync_api import BrowserContext, Page, expect

from cardap.management.commands.load_demo import DEMO_PASSWORD
from cardap.models import AutoLoadPreset, CardAP, Provider
from operators.models import AuditEntry, Operator, Terminal
from tests.e2e.test_english_ui import JAPANESE, japanese_left
from tests.otp_helpers import code_for, fresh_cache  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screens"
WIDTH = 1280
BRAND = {"ja": "カードAP搭載システム", "en": "Card AP loading service"}
TITLE = {lang: re.compile(rf"^[^—|]+ — {re.escape(brand)}$") for lang, brand in BRAND.items()}
# Words of Django's stock English that would betray an untranslated admin phrase in Japanese.
ENGLISH_IN_JAPANESE = re.compile(
    r"\b(Add|Change|Delete|Save|Search|Filter|History|Home|Action|Go|Yes|No|Unknown|Select|None)\b"
)

# The OTP device sections of the admin (django-otp's own admin classes) get their Japanese labels
# and search help elsewhere; until then their stock English is not counted here.
ELSEWHERE = ("Search by user's",)
ELSEWHERE_WORDS = {"otp_static": {"Search"}, "otp_totp": {"Search"}}

# Parts of a page that scroll sideways themselves (e.g. a wide admin change list in its box); a
# multiple-choice list box scrolling its own long option labels is the browser's widget.
INNER_SCROLL = """() => Array.from(document.querySelectorAll(':not(select)')).filter(e => {
  const s = getComputedStyle(e);
  return (s.overflowX === 'auto' || s.overflowX === 'scroll') && e.scrollWidth > e.clientWidth + 1;
}).map(e => (e.id || e.className || e.tagName) + ' by ' + (e.scrollWidth - e.clientWidth) + 'px')"""


@dataclass
class Problems:
    found: list[str] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.found.append(f"{where}: {what}")


def proper_nouns() -> list[str]:
    """Every Japanese string stored in the database: names, places, purposes people typed."""
    nouns = {"日本語"}  # the language menu names each language in itself
    for model in apps.get_models():
        if model is AuditEntry:
            continue
        text_fields = [
            f.name for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
        ]
        if not text_fields:
            continue
        for row in model.objects.values_list(*text_fields):
            for value in row:
                if isinstance(value, str) and JAPANESE.search(value):
                    nouns.add(value)
                    nouns.update(part for part in value.split() if JAPANESE.search(part))
    for op in Operator.objects.all():
        nouns.add(op.get_full_name())
    for detail in AuditEntry.objects.values_list("detail", flat=True):
        nouns.update(v for v in _strings(detail) if JAPANESE.search(v))
    return sorted(nouns, key=len, reverse=True)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.fill("input[name=code]", code_for(Operator.objects.get(username=username)))
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_count(1)


def set_language(context: BrowserContext, base: str, lang: str) -> None:
    context.add_cookies([{"name": "django_language", "value": lang, "url": base}])


def check_page(page: Page, url: str | None, name: str, lang: str, nouns: list[str], problems: Problems,
               *, status: int = 200, action: Callable[[], object] | None = None) -> None:
    """Open `url` (or run `action`, e.g. submit an admin action) and check the page it leads to."""
    errors: list[str] = []

    def on_console(msg):  # type: ignore[no-untyped-def]
        # A deliberate 403/404 page logs its own status as a failed load; nothing else may fail.
        if msg.type == "error" and not (status != 200 and str(status) in msg.text):
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = None
    try:
        if url is not None:
            response = page.goto(url)
        elif action is not None:
            with page.expect_navigation() as navigation:
                action()
            response = navigation.value
        page.wait_for_load_state("networkidle")
    finally:
        page.remove_listener("console", on_console)
    where = f"{lang} {name} ({page.url})"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{lang}.png"), full_page=True)
    if response is None or response.status != status:
        problems.add(where, f"status {response and response.status}, expected {status}")
    title = page.title()
    if not TITLE[lang].match(title):
        problems.add(where, f"title {title!r}")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        problems.add(where, f"scrolls sideways by {overflow}px at {WIDTH}px")
    inner = page.evaluate(INNER_SCROLL)
    if inner:
        problems.add(where, f"a part scrolls sideways at {WIDTH}px: {inner}")
    for error in errors:
        problems.add(where, f"console error {error!r}")
    text = page.locator("body").inner_text()
    if lang == "en":
        left = [line for line in japanese_left(text, nouns) if not any(p in line for p in ELSEWHERE)]
        if left:
            problems.add(where, f"untranslated: {left[:5]}")
    else:
        english = sorted(set(ENGLISH_IN_JAPANESE.findall(text)) - ELSEWHERE_WORDS.get(_app(page.url), set()))
        if english:
            problems.add(where, f"English left in Japanese: {english}")


def _app(url: str) -> str:
    match = re.search(r"/admin/([a-z_]+)/", url)
    return match.group(1) if match else ""


def admin_actions(page: Page, base: str, lang: str, nouns: list[str], problems: Problems) -> None:
    """The pages behind the card AP actions: the approval confirmation and the rejection reason."""
    requested = CardAP.objects.get(status=CardAP.Status.REQUESTED)
    for action in ("approve_selected", "reject_selected"):
        page.goto(f"{base}/admin/cardap/cardap/?status__exact=requested")
        page.check(f"input[name=_selected_action][value='{requested.pk}']")
        page.select_option("select[name=action]", action)
        check_page(page, None, f"jlis-admin-cardap-{action}", lang, nouns, problems,
                   action=lambda: page.click("button[name=index]"))
    assert CardAP.objects.get(pk=requested.pk).status == CardAP.Status.REQUESTED  # only asked


def admin_pages(user: Operator) -> list[tuple[str, str]]:
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = [("admin-index", reverse("admin:index"))]
    for label in sorted({m._meta.app_label for m in admin.site._registry}):
        pages.append((f"admin-{label}", reverse("admin:app_list", args=[label])))
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda m: m[0]._meta.label):
        meta = model._meta
        slug = f"admin-{meta.app_label}-{meta.model_name}"
        pages.append((slug, reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")))
        if model_admin.has_add_permission(request):
            pages.append((f"{slug}-add", reverse(f"admin:{meta.app_label}_{meta.model_name}_add")))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append((f"{slug}-change", reverse(f"admin:{meta.app_label}_{meta.model_name}_change",
                                                    args=[first.pk])))
    return pages


def role_pages(username: str) -> list[tuple[str, str, int]]:
    """(name, path, expected status) of every page the demo user's role reaches from the menu."""
    user = Operator.objects.get(username=username)
    pages = [("home", "/", 200), ("password", reverse("operators:password_change"), 200),
             ("backup-codes", reverse("operators:backup_codes"), 200),
             ("not-found", "/no-such-page/", 404)]
    role = user.role
    if role in (Operator.Role.OPERATOR, Operator.Role.TERMINAL_ADMIN, Operator.Role.PROVIDER_ADMIN):
        pages.append(("diagnosis", reverse("loading:diagnosis-start"), 200))
    if role == Operator.Role.PROVIDER_ADMIN:
        people = Operator.objects.filter(provider=user.provider, role=Operator.Role.OPERATOR)
        person = people.order_by("pk")[0]
        terminal = Terminal.objects.filter(provider=user.provider).order_by("pk")[0]
        ap = CardAP.objects.filter(provider=user.provider).order_by("pk")[0]
        pages += [
            ("people", reverse("operators:people"), 200),
            ("person-new", reverse("operators:person_create"), 200),
            ("person-edit", reverse("operators:person_edit", args=[person.pk]), 200),
            ("person-scopes", reverse("operators:person_scopes", args=[person.pk]), 200),
            ("terminals", reverse("operators:terminals"), 200),
            ("terminal-new", reverse("operators:terminal_create"), 200),
            ("terminal-edit", reverse("operators:terminal_edit", args=[terminal.pk]), 200),
            ("terminal-credential", reverse("operators:terminal_credential", args=[terminal.pk]), 200),
            ("roster", reverse("operators:roster"), 200),
            ("requests", reverse("cardap:request-list"), 200),
            ("request-new", reverse("cardap:request-new"), 200),
            ("request-detail", reverse("cardap:request-detail", args=[ap.pk]), 200),
            ("presets", reverse("cardap:preset-list"), 200),
            ("preset-new", reverse("cardap:preset-new"), 200),
            ("api-keys", reverse("revocation:keys"), 200),
            ("access-keys", reverse("cardap:access-keys"), 200),
            ("revocation-history", reverse("revocation:history"), 200),
        ]
        preset = AutoLoadPreset.objects.filter(provider=user.provider).first()
        if preset is not None:
            pages.append(("preset-edit", reverse("cardap:preset-edit", args=[preset.pk]), 200))
        requested = CardAP.objects.filter(provider=user.provider, status=CardAP.Status.REQUESTED).first()
        if requested is not None:
            detail = reverse("cardap:request-detail", args=[requested.pk])
            pages.append(("request-detail-requested", detail, 200))
    elif role == Operator.Role.TERMINAL_ADMIN:
        pages += [("terminals", reverse("operators:terminals"), 200),
                  ("roster", reverse("operators:roster"), 200)]
    elif role == Operator.Role.AUDITOR:
        pages += [("audit", reverse("operators:audit"), 200),
                  ("audit-search", reverse("operators:audit") + "?action=auth.", 200),
                  ("roster", reverse("operators:roster"), 200)]
    elif role == Operator.Role.OPERATOR:
        pages += [("forbidden", reverse("operators:people"), 403)]
    elif role == Operator.Role.JLIS_STAFF:
        pages += [("audit", reverse("operators:audit"), 200), ("roster", reverse("operators:roster"), 200),
                  ("revocation-history", reverse("revocation:history"), 200)]
        pages += [(name, path, 200) for name, path in admin_pages(user)]
    return pages


@pytest.fixture
def demo_data(db, settings):
    settings.DEMO_OPEN_ALL_HOURS = True  # as `make run`: the banner says the demo opened the hours
    call_command("load_demo", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("demo_revocations", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    from cardap import services

    city = Provider.objects.get(name="デモ市")
    services.submit_request(
        provider=city, actor=Operator.objects.get(username="city_admin"),
        name="デモ市 子育て支援カード", type="C", area="extended", purpose="子育て支援サービスの受付",
        structure="binary", file_size=128,
    )


ROLES = ["jlis", "city_admin", "shop_admin", "city_op", "city_term", "auditor", "city_auditor"]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_of_the_role(page: Page, context: BrowserContext, live_server, demo_data, username):
    page.set_viewport_size({"width": WIDTH, "height": 900})
    sign_in(page, live_server.url, username)
    nouns = proper_nouns()
    problems = Problems()
    for lang in ("ja", "en"):
        set_language(context, live_server.url, lang)
        for name, path, status in role_pages(username):
            check_page(page, live_server.url + path, f"{username}-{name}", lang, nouns, problems,
                       status=status)
        if username == "jlis":
            admin_actions(page, live_server.url, lang, nouns, problems)
    report(username, problems)


def report(name: str, problems: Problems) -> None:
    (SHOTS / f"problems-{name}.json").write_text(json.dumps(problems.found, ensure_ascii=False, indent=1))
    assert problems.found == [], json.dumps(problems.found, ensure_ascii=False, indent=1)


def test_pages_before_sign_in(page: Page, context: BrowserContext, live_server, demo_data):
    page.set_viewport_size({"width": WIDTH, "height": 900})
    nouns = proper_nouns()
    problems = Problems()
    for lang in ("ja", "en"):
        set_language(context, live_server.url, lang)
        check_page(page, live_server.url + "/accounts/login/", "anonymous-sign-in", lang, nouns, problems)
        # Before sign-in an unknown address leads to the sign-in page (nothing about which exist).
        check_page(page, live_server.url + "/no-such-page/", "anonymous-unknown-address", lang, nouns,
                   problems)
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/no-such-page/$"))
        for username, step in (("city_op", "code"), ("city_new", "enrol")):
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", DEMO_PASSWORD)
            page.click("button[type=submit].primary")
            check_page(page, page.url, f"anonymous-sign-in-{step}", lang, nouns, problems)
    report("anonymous", problems)


def test_request_form_shows_only_the_fields_of_the_chosen_type(page: Page, live_server, demo_data):
    sign_in(page, live_server.url, "city_admin")
    page.goto(f"{live_server.url}/registry/requests/new/")
    layout, pin, custom = (page.locator("fieldset.group").filter(has_text=t) for t in
                           ("データの構成", "暗証番号", "入力ファイル（独自カードAP）"))
    expect(layout).to_be_hidden()
    expect(custom).to_be_hidden()
    page.select_option("select[name=type]", "A")
    expect(layout).to_be_visible()
    expect(pin).to_be_visible()
    page.select_option("select[name=structure]", "records")
    expect(page.locator("input[name=record_count]")).to_be_visible()
    expect(page.locator("input[name=file_size]")).to_be_hidden()
    page.select_option("select[name=type]", "custom")
    expect(layout).to_be_hidden()
    expect(custom).to_be_visible()
    # The file picker speaks the page's language, and names the chosen file.
    picker = custom.locator(".file-picker")
    expect(picker.locator("label.button")).to_have_text("ファイルを選択")
    picker.locator("input[type=file]").set_input_files(
        files=[{"name": "member.yaml", "mimeType": "text/yaml", "buffer": b"name: x\n"}]
    )
    expect(picker.locator(".file-name")).to_have_text("member.yaml")
