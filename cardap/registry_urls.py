from django.urls import path

from cardap import registry_views as views

app_name = "cardap"

urlpatterns = [
    path("requests/", views.request_list, name="request-list"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("custom-ap/<str:name>", views.custom_ap_download, name="custom-ap-download"),
    path("access-keys/", views.access_keys, name="access-keys"),
    path("presets/", views.preset_list, name="preset-list"),
    path("presets/new/", views.preset_edit, name="preset-new"),
    path("presets/<int:pk>/", views.preset_edit, name="preset-edit"),
    path("presets/<int:pk>/delete/", views.preset_delete, name="preset-delete"),
]
