import os

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config import env


def test_language_and_time_zone():
    assert settings.LANGUAGE_CODE == "ja"
    assert "en" in dict(settings.LANGUAGES)
    assert settings.TIME_ZONE == "Asia/Tokyo" and settings.USE_TZ


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_env_bool_rejects_garbage(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env.env_bool("X_FLAG")


def test_env_int_bounds(monkeypatch):
    monkeypatch.setenv("X_PORT", "70000")
    with pytest.raises(ImproperlyConfigured, match="maximum"):
        env.env_int("X_PORT", 25, maximum=65535)
    monkeypatch.setenv("X_PORT", "abc")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("X_PORT", 25)


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["database"]["detail"] == connection.vendor


@pytest.mark.django_db
def test_healthz_503_when_broker_unreachable(client, settings, monkeypatch):
    """A broker that really does not answer (a closed port), not a patched check."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and not body["broker"]["ok"] and body["database"]["ok"]


@pytest.mark.skipif(not os.environ.get("CARDAP_REQUIRE_REAL_SERVICES"), reason="only in CI")
def test_ci_uses_real_postgresql_and_redis():
    """CI must exercise the real servers, not the embedded defaults."""
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert not settings.CELERY_TASK_ALWAYS_EAGER
