"""Print the current one-time code of a demo user's authenticator (demo mode only)."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Show the current TOTP code for a user (only when CARDAP_DEMO=1)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEMO:
            raise CommandError("demo_otp is available only in demo mode (CARDAP_DEMO=1)")
        device = TOTPDevice.objects.filter(user__username=options["username"], confirmed=True).first()
        if device is None:
            raise CommandError(f"no confirmed authenticator for {options['username']!r}")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        remaining = device.step - int(time.time() - device.t0) % device.step
        self.stdout.write(f"{code:0{device.digits}d}  (valid for {remaining} s)")
