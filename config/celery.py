"""The Celery application: card sessions, the daily revocation sync and mail run here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cardap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
