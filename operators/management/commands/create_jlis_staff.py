"""Create a J-LIS staff account (the first one of a deployment); prints a generated password once.
The account enrols its authenticator app at first sign-in."""

from __future__ import annotations

import secrets

from django.core.management.base import BaseCommand, CommandError

from operators.audit import record
from operators.models import Operator


class Command(BaseCommand):
    help = "Create a J-LIS staff account with a generated password (shown once)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--first-name", default="")

    def handle(self, *args: object, **options: str) -> None:
        username = options["username"]
        if Operator.objects.filter(username__iexact=username).exists():
            raise CommandError(f"user {username!r} already exists")
        password = secrets.token_urlsafe(15)
        user = Operator(
            username=username,
            email=options["email"],
            last_name=options["last_name"],
            first_name=options["first_name"],
            role=Operator.Role.JLIS_STAFF,
            is_staff=True,
        )
        user.full_clean(exclude=["password"])
        user.set_password(password)
        user.save()
        record(action="operator.create", actor="manage.py", target=username, detail={"role": user.role})
        self.stdout.write(f"J-LIS staff {username!r} created. Initial password (shown once): {password}")
        self.stdout.write(
            "Sign in and scan the QR code with an authenticator app to enrol the second factor."
        )
