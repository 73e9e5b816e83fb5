"""Demo data for a first run: live providers, one user per role with a known TOTP secret."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import Provider
from operators.models import Operation, Operator, OperatorScope, Terminal
from operators.services import issue_terminal_credential

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
# The first demo terminal's credential is issued afresh on every run (the previous one stops
# working) and written, never printed, to this file (mode 0600) for the agent `make run` starts.
DEMO_CREDENTIAL_FILE = "demo-terminal.credential"

# username -> operations (on every terminal of the provider, every card AP)
SCOPES = {
    "city_op": [Operation.LOAD, Operation.DELETE, Operation.DIAGNOSE, Operation.MOVE_IN],
    "city_term": [Operation.DIAGNOSE],
    "shop_op": [Operation.LOAD, Operation.DELETE, Operation.DIAGNOSE],
}


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600 from the first byte), replacing
    the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


class Command(BaseCommand):
    help = "Load demo providers and users (idempotent); issue the demo terminal's credential to a file."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--credential-file",
            default=None,
            help=f"where to write the demo terminal's credential (default: VAR_DIR/{DEMO_CREDENTIAL_FILE})",
        )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEMO:
            # Known passwords, TOTP secrets and a published terminal credential: never outside a demo.
            raise CommandError("load_demo installs public credentials: it runs only with CARDAP_DEMO=1")
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
        credential_file = Path(str(options.get("credential_file") or settings.VAR_DIR / DEMO_CREDENTIAL_FILE))
        city_admin = Operator.objects.get(username="city_admin")
        write_secret_file(credential_file, issue_terminal_credential(actor=city_admin, terminal=first))
        for username, operations in SCOPES.items():
            user = Operator.objects.get(username=username)
            for operation in operations:
                OperatorScope.objects.get_or_create(
                    operator=user, operation=operation, defaults={"all_terminals": True, "all_card_aps": True}
                )
        store_demo_master_keys()
        self.stdout.write(
            f"Demo terminal {first.provider} {first.name}: its new credential is in {credential_file}"
        )
        self.stdout.write("One-time codes: .venv/bin/python manage.py demo_otp USERNAME")
        load_registry_demo(providers, Operator.objects.get(username="jlis"), self.stdout.write)


# The public demo region master keys of docs/card-protocol.md ("Demo keys"): the virtual card's
# bureau diversifies its keys from the same values, so the demo server opens SCP03 with it.
DEMO_MASTER_KEYS = {
    "A000000151000000": "00112233445566778899AABBCCDDEEFF",
    "D392100031000201": "10112233445566778899AABBCCDDEE01",
    "D392100031000202": "20112233445566778899AABBCCDDEE02",
}


def store_demo_master_keys() -> None:
    from cardap.keystore import get_keystore

    store = get_keystore()
    for sd, key in DEMO_MASTER_KEYS.items():
        store.put_master_key(sd, 0x30, bytes.fromhex(key))


# --- the card AP registry: legal bases, approved card APs of every type, a preset, maintenance ---

LEGAL_BASES = {
    "デモ市": ("ordinance", "デモ市個人番号カードの利用に関する条例"),
    "デモ県": ("ordinance", "デモ県個人番号カード利用条例"),
    "デモ行政法人": ("notice", "個人番号カード利用に関する告示"),
    "デモ商事株式会社": ("minister_confirmation", "法基準適合性確認 総情第0001号"),
}

DEMO_APS = [
    # provider, name, type, area, extra request fields
    ("デモ市", "デモ市 住民サービスカード", "A", "local",
     {"structure": "records", "record_count": 8, "record_length": 32, "pin_source": "holder"}),
    ("デモ市", "デモ市 図書館カード", "C", "extended", {"structure": "binary", "file_size": 64}),
    ("デモ県", "デモ県 県立施設利用カード", "D", "extended",
     {"structure": "binary", "file_size": 256, "pin_source": "system"}),
    ("デモ行政法人", "デモ行政法人 職員証", "A", "extended",
     {"structure": "records", "record_count": 4, "record_length": 64, "pin_source": "holder"}),
    ("デモ商事株式会社", "デモ商事 会員カード（独自）", "custom", "extended", {}),
]


def load_registry_demo(providers: dict, jlis: Operator, write: Callable[[str], object]) -> None:
    from cardap import service_calendar, services
    from cardap.models import AutoLoadPreset, CardAP, CardAPShare, MaintenanceWindow

    for name, (kind, reference) in LEGAL_BASES.items():
        Provider.objects.filter(name=name, legal_basis_kind="").update(
            legal_basis_kind=kind, legal_basis_reference=reference, legal_basis_date=dt.date(2026, 4, 1),
            contract_reference=f"JLIS-DEMO-{providers[name].pk:04d}",
        )
    template = (Path(services.__file__).parent / "custom_ap" / "template.yaml").read_text()
    write("Demo card APs:")
    for provider_name, ap_name, ap_type, area, extra in DEMO_APS:
        provider = providers[provider_name]
        ap = CardAP.objects.filter(provider=provider, name=ap_name).first()
        if ap is None:
            # The representative's administrator applies; J-LIS staff register for providers without one.
            admin = provider.operators.filter(role=Operator.Role.PROVIDER_ADMIN).first() or jlis
            fields: dict[str, Any] = {
                "name": ap_name, "type": ap_type, "area": area, "purpose": "デモ用", **extra
            }
            if ap_type == "custom":
                fields.update(input_format="yaml", input_file=template)
            ap = services.submit_request(provider=provider, actor=admin, **fields)
        if ap.status == CardAP.Status.REQUESTED:
            ap = services.approve_request(card_ap_id=ap.pk, actor=jlis)
        write(f"  {ap.aid}  {ap.get_type_display():<10} {ap.name}")
    city = providers["デモ市"]
    # デモ市 co-provides the prefecture's type D AP and the company's custom AP (R3.4, "shared"),
    # so city_op at 窓口端末1 loads one card AP of every type from the browser.
    for provider_name, ap_name in (("デモ県", DEMO_APS[2][1]), ("デモ商事株式会社", DEMO_APS[4][1])):
        shared = CardAP.objects.get(provider=providers[provider_name], name=ap_name)
        if not CardAPShare.objects.filter(card_ap=shared, provider=city).exists():
            services.add_share(
                card_ap=shared, provider=city, role=CardAPShare.Role.SHARED, since=dt.date(2026, 4, 1),
                actor=jlis, note="デモ: 共同利用",
            )
    if not AutoLoadPreset.objects.filter(provider=city, name="転入窓口セット").exists():
        services.save_preset(
            provider=city, name="転入窓口セット", description="転入手続きの窓口で自動搭載",
            card_aps=list(
                CardAP.objects.filter(provider=city, status=CardAP.Status.APPROVED).order_by("name")
            ),
            actor=jlis,
        )
    now = timezone.now()
    if not MaintenanceWindow.objects.filter(title="デモ計画保守", ends_at__gt=now).exists():
        day = service_calendar.earliest_planned_start(now)
        starts = dt.datetime.combine(day, dt.time(22, 30), service_calendar.JST)
        service_calendar.schedule_maintenance(
            title="デモ計画保守", description="基盤ソフトウェアの更新（デモ）", starts_at=starts,
            ends_at=starts + dt.timedelta(hours=8), actor=jlis,
        )
    write("デモ市 co-provides the デモ県 type D AP and the デモ商事 custom AP (shared use).")
    write("Preset 転入窓口セット and a planned maintenance window loaded.")

