from django.urls import path

from revocation import api, views

app_name = "revocation"

urlpatterns = [
    path("api/v1/revocations/", api.DeltaView.as_view(), name="api-delta"),
    path("api/v1/revocations/snapshot/", api.SnapshotView.as_view(), name="api-snapshot"),
    path(
        "api/v1/revocations/snapshot/signature/",
        api.SnapshotSignatureView.as_view(),
        name="api-snapshot-signature",
    ),
    path("api/v1/revocations/public-key/", api.PublicKeyView.as_view(), name="api-public-key"),
    path("revocation/", views.history, name="history"),
    path("revocation/keys/", views.api_keys, name="keys"),
    path("revocation/keys/<int:key_id>/revoke/", views.revoke_api_key, name="revoke-key"),
]
