"""Demo data for a first run: live providers, one user per role with a known TOTP secret."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import Provider
from operators.models import Operator

DEMO_PASSWORD = "demo-password-2026"

PROVIDERS = [
    ("デモ市", Provider.Kind.MUNICIPALITY, "131016"),
    ("デモ県", Provider.Kind.STATE, "130001"),
    ("デモ行政法人", Provider.Kind.ADMIN_BODY, ""),
    ("デモ商事株式会社", Provider.Kind.PRIVATE, ""),
]

USERS = [
    ("jlis", Operator.Role.JLIS_STAFF, None, "機構 太郎"),
    ("city_admin", Operator.Role.PROVIDER_ADMIN, "デモ市", "市役所 花子"),
    ("city_op", Operator.Role.OPERATOR, "デモ市", "窓口 一郎"),
    ("shop_admin", Operator.Role.PROVIDER_ADMIN, "デモ商事株式会社", "商事 次郎"),
    ("shop_op", Operator.Role.OPERATOR, "デモ商事株式会社", "店舗 三郎"),
    ("auditor", Operator.Role.AUDITOR, None, "監査 四郎"),
]


class Command(BaseCommand):
    help = "Load demo providers and users (idempotent)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        providers = {}
        for name, kind, code in PROVIDERS:
            providers[name], _ = Provider.objects.get_or_create(
                name=name,
                defaults={
                    "kind": kind,
                    "local_gov_code": code,
                    "status": Provider.Status.LIVE,
                    "failure_email": "failure@example.jp",
                    "maintenance_email": "maintenance@example.jp",
                },
            )
        self.stdout.write(f"Demo users (password: {DEMO_PASSWORD}):")
        for username, role, provider_name, full_name in USERS:
            family, given = full_name.split(" ")
            user, created = Operator.objects.get_or_create(
                username=username,
                defaults={
                    "role": role,
                    "provider": providers.get(provider_name) if provider_name else None,
                    "last_name": family,
                    "first_name": given,
                    "is_staff": role == Operator.Role.JLIS_STAFF,
                    "is_superuser": role == Operator.Role.JLIS_STAFF,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            TOTPDevice.objects.get_or_create(user=user, name="demo", defaults={"confirmed": True})
            self.stdout.write(f"  {username:<12} {user.get_role_display()}")
