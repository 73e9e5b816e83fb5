from django.urls import path

from loading import views

app_name = "jobs"
urlpatterns = [
    path("terminals/", views.terminal_list, name="terminals"),
    path("terminals/<int:pk>/", views.terminal_page, name="terminal"),
    path("terminals/<int:pk>/read", views.read_card, name="read"),
    path("terminals/<int:pk>/load", views.load, name="load"),
    path("terminals/<int:pk>/delete", views.delete, name="delete"),
    path("terminals/<int:pk>/move-in", views.move_in, name="move-in"),
    path("", views.job_list, name="jobs"),
    path("export.csv", views.job_csv, name="jobs-csv"),
    path("<uuid:pk>/", views.job_page, name="job"),
    path("<uuid:pk>/status.json", views.job_status, name="job-status"),
    path("<uuid:pk>/diagnose", views.diagnose, name="job-diagnose"),
]
