from django.urls import path

from loading import diagnosis_views

app_name = "loading"

urlpatterns = [
    path("", diagnosis_views.start, name="diagnosis-start"),
    path("<str:reference>/", diagnosis_views.detail, name="diagnosis-detail"),
]
