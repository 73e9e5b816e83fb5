from django.urls import path

from loading import presence_views as views

app_name = "presence"

urlpatterns = [
    path("terminals/<int:pk>/", views.terminal_status, name="terminal_status"),
    path("terminals/<int:pk>/presence.json", views.terminal_presence_json, name="terminal_presence"),
]
