from django.urls import path

from loading import views

app_name = "loading"

urlpatterns = [
    path("terminals/<int:pk>/", views.terminal_status, name="terminal_status"),
    path("terminals/<int:pk>/presence.json", views.terminal_presence_json, name="terminal_presence"),
]
