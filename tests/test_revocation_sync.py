"""The daily sync: directory and HTTPS sources, the manual command, beat and a real worker."""

import functools
import http.server
import threading

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command

from revocation import services, tasks
from revocation.models import CardStatus, Feed
from tests.revocation_support import at, fast_passwords, write  # noqa: F401


def three_feeds(directory):
    write(directory, 1, [("AB01", "suspended", "lost", at(1, 9))])
    write(directory, 2, [("AB01", "resumed", "found", at(2, 9))])
    write(directory, 3, [("AB02", "revoked", "stolen", at(3, 9))])


@pytest.mark.django_db
def test_directory_sync_applies_in_order_and_only_new_feeds(tmp_path):
    three_feeds(tmp_path)
    assert [f.number for f in services.sync_directory(directory=tmp_path)] == [1, 2, 3]
    assert services.sync_directory(directory=tmp_path) == []
    assert CardStatus.objects.get(card_id="AB01").status == "resumed"


@pytest.mark.django_db
def test_directory_sync_stops_at_a_gap(tmp_path):
    write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
    write(tmp_path, 3, [("AB01", "revoked", "lost", at(3, 9))])
    write(tmp_path, 4, [("AB01", "resumed", "found", at(4, 9))])
    result = services.sync_directory(directory=tmp_path)
    assert [(f.number, f.state) for f in result] == [(1, "applied"), (3, "rejected")]
    assert result[-1].reason_code == "gap"
    assert CardStatus.objects.get(card_id="AB01").status == "suspended"


@pytest.mark.django_db
def test_command_from_directory_and_refusal_exit(tmp_path, capsys):
    three_feeds(tmp_path)
    call_command("sync_revocations", "--dir", str(tmp_path))
    assert "feed 3: applied" in capsys.readouterr().out
    write(tmp_path / "bad", 5, [("AB01", "revoked", "lost", at(5, 9))], previous=4)
    with pytest.raises(CommandError, match="refused"):
        call_command("sync_revocations", "--dir", str(tmp_path / "bad"))
    assert "[gap]" in capsys.readouterr().err
    with pytest.raises(CommandError, match="not a directory"):
        call_command("sync_revocations", "--dir", str(tmp_path / "nope"))


@pytest.fixture
def feed_server(tmp_path):
    three_feeds(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.mark.django_db
def test_url_sync_against_local_server(feed_server):
    call_command("sync_revocations", "--url", feed_server)
    assert list(Feed.objects.order_by("number").values_list("number", "state")) == [
        (1, "applied"),
        (2, "applied"),
        (3, "applied"),
    ]
    assert Feed.objects.get(number=3).source == feed_server + "revocation-feed-00000003.jsonl"


@pytest.mark.django_db
def test_url_must_be_https_except_loopback():
    with pytest.raises(CommandError, match="https"):
        call_command("sync_revocations", "--url", "http://feeds.example.jp/")


@pytest.mark.django_db
def test_url_download_over_the_limit_is_recorded_as_oversized(feed_server, settings):
    settings.REVOCATION_FEED_MAX_BYTES = 200  # each one-change feed is about 300 bytes
    feed = services.sync_url(base_url=feed_server)[0]
    assert feed.reason_code == "oversized" and feed.size == 201  # the download stopped there


def test_daily_sync_is_on_the_beat_schedule_in_japan_time():
    entry = settings.CELERY_BEAT_SCHEDULE["revocation-daily-sync"]
    assert entry["task"] == "revocation.sync"
    assert entry["schedule"] == crontab(hour=4, minute=30)
    assert settings.CELERY_TIMEZONE == "Asia/Tokyo"


@pytest.mark.django_db
def test_task_uses_configured_directory(tmp_path, settings):
    settings.REVOCATION_FEED_URL = ""
    settings.REVOCATION_FEED_DIR = tmp_path
    three_feeds(tmp_path)
    result = tasks.sync.delay().get(timeout=20) if settings.CELERY_TASK_ALWAYS_EAGER else tasks.sync()
    assert [r["state"] for r in result] == ["applied"] * 3


@pytest.mark.celery
@pytest.mark.skipif(settings.CELERY_TASK_ALWAYS_EAGER, reason="no broker configured (embedded default)")
def test_sync_runs_on_a_real_worker(celery_worker_real, tmp_path, settings):
    settings.REVOCATION_FEED_URL = ""
    settings.REVOCATION_FEED_DIR = tmp_path
    three_feeds(tmp_path)
    result = tasks.sync.delay().get(timeout=30)
    assert [r["number"] for r in result] == [1, 2, 3]
    assert CardStatus.objects.get(card_id="AB02").status == "revoked"


def test_feed_source_never_keeps_credentials():
    assert services._redact("https://user:secret@feeds.example.jp:8443/d/f.jsonl") == (
        "https://feeds.example.jp:8443/d/f.jsonl"
    )


@pytest.mark.django_db
def test_demo_feed_command_is_idempotent(tmp_path, settings):
    settings.REVOCATION_FEED_DIR = tmp_path
    call_command("demo_revocations")
    call_command("demo_revocations")
    assert list(Feed.objects.values_list("number", "state")) == [(1, "applied")]
