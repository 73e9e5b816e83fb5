from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config import views
from loading.api import InstallationsView

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("operators.urls")),
    path("admin/", admin.site.urls),
    path("", include("revocation.urls")),
    path("relay/v1/", include("loading.relay_urls")),
    path("loading/", include("loading.presence_urls")),
    path("registry/", include("cardap.registry_urls")),
    path("jobs/", include("loading.urls")),
    path("diagnosis/", include("loading.diagnosis_urls")),
    path("api/v1/card-aps/", include("cardap.api_urls")),
    path("api/v1/installations/", InstallationsView.as_view(), name="api-installations"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Redoc (self-hosted) styles its page at run time and searches in a worker: only this page
    # allows inline styles and blob: workers; scripts stay this origin's own.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]
