"""Demo data for a first run: live providers, one user per role with a known TOTP secret."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import Provider
from operators.models import Operation, Operator, OperatorScope, Terminal
from operators.services import _digest

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
    ("city_term", Operator.Role.TERMINAL_ADMIN, "デモ市", "端末 五郎"),
    ("city_auditor", Operator.Role.AUDITOR, "デモ市", "監査 六子"),
]
# Signs in with the password only the first time and enrols an authenticator app by QR code.
NEW_USER = ("city_new", Operator.Role.OPERATOR, "デモ市", "新人 七海")

# (provider, terminal name, location, administrator)
TERMINALS = [
    ("デモ市", "窓口端末1", "本庁舎1階 市民課窓口", "city_term"),
    ("デモ市", "窓口端末2", "北支所 窓口", "city_admin"),
    ("デモ商事株式会社", "店舗端末1", "本店 サービスカウンター", "shop_admin"),
]
# A fixed credential for the first demo terminal so the agent can be started from the README
# (demo data only: real credentials are generated and shown once).
DEMO_TERMINAL_TOKEN = "cat_demo0001_demo-terminal-credential-not-for-production"

# username -> operations (on every terminal of the provider, every card AP)
SCOPES = {
    "city_op": [Operation.LOAD, Operation.DELETE, Operation.DIAGNOSE, Operation.MOVE_IN],
    "city_term": [Operation.DIAGNOSE],
    "shop_op": [Operation.LOAD, Operation.DELETE, Operation.DIAGNOSE],
}


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
        username, role, provider_name, full_name = NEW_USER
        family, given = full_name.split(" ")
        newbie, created = Operator.objects.get_or_create(
            username=username,
            defaults={
                "role": role, "provider": providers[provider_name], "last_name": family, "first_name": given
            },
        )
        if created:
            newbie.set_password(DEMO_PASSWORD)
            newbie.save()
        self.stdout.write(
            f"  {username:<12} {newbie.get_role_display()} (first sign-in: enrols an authenticator app)"
        )

        for provider_name, name, location, admin_name in TERMINALS:
            Terminal.objects.get_or_create(
                provider=providers[provider_name], name=name,
                defaults={"location": location, "administrator": Operator.objects.get(username=admin_name)},
            )
        first = Terminal.objects.get(provider=providers["デモ市"], name=TERMINALS[0][1])
        if first.credential_hash != _digest(DEMO_TERMINAL_TOKEN):
            first.credential_prefix = "demo0001"
            first.credential_hash = _digest(DEMO_TERMINAL_TOKEN)
            first.credential_issued_at = timezone.now()
            first.credential_revoked_at = None
            first.save()
        for username, operations in SCOPES.items():
            user = Operator.objects.get(username=username)
            for operation in operations:
                OperatorScope.objects.get_or_create(
                    operator=user, operation=operation, defaults={"all_terminals": True, "all_card_aps": True}
                )
        self.stdout.write(f"Demo terminal credential ({first.provider} {first.name}): {DEMO_TERMINAL_TOKEN}")
        self.stdout.write("One-time codes: .venv/bin/python manage.py demo_otp USERNAME")
