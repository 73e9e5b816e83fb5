"""The admin app with the J-LIS site as `admin.site` (Django's AdminConfig.default_site), listed in
INSTALLED_APPS in place of django.contrib.admin. Imports no models: it is loaded before them."""

from django.contrib.admin.apps import AdminConfig


class JLISAdminConfig(AdminConfig):
    default_site = "operators.admin_site.JLISAdminSite"
