from django.contrib.auth import views as auth_views
from django.urls import path

from operators import signin, views

app_name = "operators"

urlpatterns = [
    path("login/", signin.login_view, name="login"),
    path("otp/", signin.otp_view, name="otp"),
    path("enrol/", signin.enrol_view, name="enrol"),
    path("reauth/", signin.reauth_view, name="reauth"),
    path("backup-codes/", signin.backup_codes_view, name="backup_codes"),
    path("password/", signin.password_change_view, name="password_change"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("people/", views.people_list, name="people"),
    path("people/new/", views.person_create, name="person_create"),
    path("people/<int:pk>/", views.person_edit, name="person_edit"),
    path("people/<int:pk>/reset/", views.person_reset, name="person_reset"),
    path("people/<int:pk>/scopes/", views.person_scopes, name="person_scopes"),
    path("terminals/", views.terminal_list, name="terminals"),
    path("terminals/new/", views.terminal_create, name="terminal_create"),
    path("terminals/<int:pk>/", views.terminal_edit, name="terminal_edit"),
    path("terminals/<int:pk>/credential/", views.terminal_credential, name="terminal_credential"),
    path("roster/", views.roster, name="roster"),
    path("roster.csv", views.roster_csv, name="roster_csv"),
    path("audit/", views.audit_log, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
]
