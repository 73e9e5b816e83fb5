"""The service's URLs plus /bench-legacy/api/v1/revocations/ (the previous delta view)."""

from django.urls import path
from revocation_legacy import legacy_delta_view

from config.urls import urlpatterns as service_urls

urlpatterns = [path("bench-legacy/api/v1/revocations/", legacy_delta_view()), *service_urls]
