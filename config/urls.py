from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config import views
from loading.api import InstallationsView

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
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
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]
