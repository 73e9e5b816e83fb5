"""Print the current one-time code of a demo user's authenticator (demo mode only)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operators.demo import current_code


class Command(BaseCommand):
    help = "Show the current TOTP code for a user (only when CARDAP_DEMO=1)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEMO:
            raise CommandError("demo_otp is available only in demo mode (CARDAP_DEMO=1)")
        demo = current_code(str(options["username"]))
        if demo is None:
            raise CommandError(f"no confirmed authenticator for {options['username']!r}")
        self.stdout.write(f"{demo.code}  (valid for {demo.seconds_left} s)")
