"""Check the audit log's hash chain; exit non-zero naming every altered or deleted entry."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from operators.audit import verify_chain
from operators.models import AuditEntry


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (detects altered and deleted entries)."

    def handle(self, *args: object, **options: object) -> None:
        problems = verify_chain()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"audit log verification FAILED: {len(problems)} problem(s)")
        self.stdout.write(f"audit log intact: {AuditEntry.objects.count()} entries")
