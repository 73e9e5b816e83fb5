"""The service's URLs plus the previous views, for before/after in one run:
/bench-legacy/api/v1/revocations/ (the previous delta view) and
/bench-legacy/api/v1/revocations/snapshot/ (the snapshot as a synchronous iterator)."""

from django.urls import path
from revocation_legacy import legacy_delta_view, sync_snapshot_view

from config.urls import urlpatterns as service_urls

urlpatterns = [
    path("bench-legacy/api/v1/revocations/", legacy_delta_view()),
    path("bench-legacy/api/v1/revocations/snapshot/", sync_snapshot_view()),
    *service_urls,
]
