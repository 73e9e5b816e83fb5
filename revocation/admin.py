"""Read-only admin views of the revocation records for J-LIS staff (changes come only from feeds)."""

from django.contrib import admin

from revocation.models import Feed, ProviderPull


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Feed)
class FeedAdmin(_ReadOnly):
    list_display = ["number", "state", "reason_code", "reason_line", "count", "cards_changed", "received_at"]
    list_filter = ["state", "reason_code"]


@admin.register(ProviderPull)
class ProviderPullAdmin(_ReadOnly):
    list_display = ["provider", "pulled_at", "kind", "last_seq", "pulls"]
