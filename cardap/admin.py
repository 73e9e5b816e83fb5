from django.contrib import admin

from cardap.models import CardAP, CardAPInstallation, CardAPShare, Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "local_gov_code"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "local_gov_code"]


@admin.register(CardAP)
class CardAPAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "type", "area", "status", "aid"]
    list_filter = ["type", "area", "status"]
    search_fields = ["name", "aid", "provider__name"]


admin.site.register(CardAPShare)


@admin.register(CardAPInstallation)
class CardAPInstallationAdmin(admin.ModelAdmin):
    list_display = ["card_id", "card_ap", "state", "installed_at"]
    list_filter = ["state"]
    search_fields = ["card_id"]
