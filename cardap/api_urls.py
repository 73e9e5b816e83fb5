from django.urls import path

from cardap import api

urlpatterns = [
    path("", api.CardAPList.as_view(), name="api-card-ap-list"),
    path("<str:aid>/", api.CardAPDetail.as_view(), name="api-card-ap-detail"),
]
