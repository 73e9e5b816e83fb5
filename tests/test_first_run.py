"""A newcomer's first run: demo mode opens the service hours and says so, the demo code page shows
the current one-time code (never outside demo mode), the console stays readable, the README's
links resolve inside the repository."""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.test import override_settings

from cardap import service_calendar as cal
from cardap.models import MaintenanceWindow
from config.logfilters import ExpectedRefusals
from tests.conftest import PASSWORD
from tests.otp_helpers import code_for, fresh_cache  # noqa: F401

JST = ZoneInfo("Asia/Tokyo")
EARLY = dt.datetime(2027, 3, 1, 5, 0, tzinfo=JST)  # before the 08:00 opening
NEW_YEAR = dt.datetime(2027, 12, 31, 12, 0, tzinfo=JST)  # inside the year-end closure
ROOT = Path(__file__).resolve().parent.parent


# --- demo mode opens the service hours ----------------------------------------------------------


@pytest.mark.django_db
def test_demo_mode_lets_card_operations_start_at_any_hour(settings):
    settings.DEMO, settings.DEMO_OPEN_ALL_HOURS = True, True
    cal.check_can_start_job(EARLY)
    cal.check_can_start_job(NEW_YEAR)
    assert cal.is_open(EARLY) and cal.next_opening(EARLY) == EARLY


@pytest.mark.django_db
def test_real_hours_apply_without_the_demo_opening(settings):
    for demo, opened in ((True, False), (False, True), (False, False)):
        settings.DEMO, settings.DEMO_OPEN_ALL_HOURS = demo, opened
        with pytest.raises(cal.ServiceClosed) as closed:
            cal.check_can_start_job(EARLY)
        assert closed.value.reason == "hours"
        assert closed.value.resumes_at == EARLY.replace(hour=8)


@pytest.mark.django_db
def test_maintenance_still_closes_the_demo(settings):
    settings.DEMO, settings.DEMO_OPEN_ALL_HOURS = True, True
    MaintenanceWindow.objects.create(
        title="保守", urgent=True,
        starts_at=EARLY - dt.timedelta(hours=1), ends_at=EARLY + dt.timedelta(hours=1),
    )
    with pytest.raises(cal.ServiceClosed) as closed:
        cal.check_can_start_job(EARLY)
    assert closed.value.reason == "maintenance"
    assert closed.value.resumes_at == EARLY + dt.timedelta(hours=1)


def test_settings_refuse_open_hours_outside_demo_mode():
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "DEMO_OPEN_ALL_HOURS": "1", "DEBUG": "1", "CARDAP_VAR_DIR": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings';"
         "from django.conf import settings; settings.DEMO_OPEN_ALL_HOURS"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "DEMO_OPEN_ALL_HOURS=1 is allowed only in demo mode" in result.stderr


@pytest.mark.django_db
def test_demo_banner_says_the_hours_are_open_and_how_real_hours_are_set(client, world, settings):
    settings.DEMO, settings.DEMO_OPEN_ALL_HOURS = True, True
    page = client.get("/accounts/login/").content.decode()
    banner = re.search(r'<aside class="demo-banner".*?</aside>', page, re.S)
    assert banner is not None
    assert "SERVICE_OPEN_TIME" in banner.group(0) and "08:00〜22:00" in banner.group(0)
    settings.DEMO_OPEN_ALL_HOURS = False
    page = client.get("/accounts/login/").content.decode()
    banner = re.search(r'<aside class="demo-banner".*?</aside>', page, re.S)
    assert banner is not None and "SERVICE_OPEN_TIME" not in banner.group(0)
    settings.DEMO = False
    assert "demo-banner" not in client.get("/accounts/login/").content.decode()


# --- the current code on the demo code page -----------------------------------------------------


def _code_page(client, username: str) -> str:
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response["Location"] == "/accounts/otp/"
    return client.get("/accounts/otp/").content.decode()


@pytest.mark.django_db
def test_demo_code_page_shows_the_users_current_code(client, world, settings):
    settings.DEMO = True
    page = _code_page(client, "city_admin")
    shown = re.search(r'data-testid="demo-code">.*?<code>(\d{6})</code>', page, re.S)
    assert shown is not None and "demo-banner" in page
    # The code shown is the one the user's authenticator shows now, and it signs in.
    assert shown.group(1) == code_for(world.city_admin)
    assert client.post("/accounts/otp/", {"code": shown.group(1)})["Location"] == "/"


@pytest.mark.django_db
def test_code_is_never_shown_outside_demo_mode(client, world, settings):
    settings.DEMO = False
    page = _code_page(client, "city_admin")
    assert "demo-code" not in page and "demo-banner" not in page
    assert code_for(world.city_admin) not in page


@pytest.mark.django_db
def test_demo_otp_command_refused_outside_demo_mode(world, settings):
    from django.core.management import CommandError, call_command

    settings.DEMO = False
    with pytest.raises(CommandError, match="only in demo mode"):
        call_command("demo_otp", "city_admin")


# --- a quiet console ----------------------------------------------------------------------------


def test_demo_mail_is_one_readable_line(capsys):
    with override_settings(EMAIL_BACKEND="config.mail.SummaryConsoleBackend"):
        message = EmailMessage("【カードAP搭載システム】計画保守のお知らせ", "本文" * 200, to=["a@x.jp"])
        sent = message.send()
    out = capsys.readouterr().out
    assert sent == 1
    assert out == "[mail] to a@x.jp: 【カードAP搭載システム】計画保守のお知らせ\n"
    assert mail.outbox == []  # nothing else was sent


def test_403_and_404_are_logged_without_a_traceback():
    try:
        raise PermissionDenied("no")
    except PermissionDenied:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden", (), exc_info)
    record.status_code = 403
    assert ExpectedRefusals().filter(record) and record.exc_info is None
    failure = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Server error", (), exc_info)
    failure.status_code = 500
    assert ExpectedRefusals().filter(failure) and failure.exc_info is exc_info  # real errors keep it


@pytest.mark.django_db
def test_unknown_url_shows_the_services_own_404_page(world, login):
    response = login(world.city_admin).get("/no-such-page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "<title>ページが見つかりません — カードAP搭載システム</title>" in body
    assert 'href="/static/favicon.svg"' in body


# --- the README works from a clone ----------------------------------------------------------------


def test_readme_links_resolve_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme) + re.findall(r"`(\.\./[^`]+)`", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to the docs"
    missing = [t for t in local if not (ROOT / t).resolve().is_relative_to(ROOT) or not (ROOT / t).exists()]
    assert missing == []


def test_readme_lists_every_demo_user():
    from cardap.management.commands.load_demo import DEMO_PASSWORD, NEW_USER, USERS

    readme = (ROOT / "README.md").read_text()
    first_run = readme.split("## First run", 1)[1].split("\n## ", 1)[0]
    for username, *_ in [*USERS, NEW_USER]:
        assert f"| `{username}` |" in first_run, username
    assert DEMO_PASSWORD in first_run
