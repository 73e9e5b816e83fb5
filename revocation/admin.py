"""Read-only admin views of the revocation records for J-LIS staff (changes come only from feeds)."""

from django.contrib import admin

from operators.admin_site import ReadOnlyAdmin
from revocation.models import Feed, ProviderPull


@admin.register(Feed)
class FeedAdmin(ReadOnlyAdmin):
    list_display = ["number", "state", "reason_code", "reason_line", "count", "cards_changed", "received_at"]
    list_filter = ["state", "reason_code"]


@admin.register(ProviderPull)
class ProviderPullAdmin(ReadOnlyAdmin):
    list_display = ["provider", "pulled_at", "kind", "last_seq", "pulls"]
