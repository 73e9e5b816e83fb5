"""Check the audit log's hash chain; exit non-zero naming every altered or deleted entry.

The chain alone cannot reveal that its newest entries were cut off, so the command prints the
head (`ID:HASH`); kept outside the database (a daily mail, a ticket) and passed back with
`--expect-head`, it proves that nothing up to that entry was truncated.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from operators.audit import verify_chain
from operators.models import AuditEntry


def check_head(expected: str) -> list[str]:
    entry_id, _, digest = expected.partition(":")
    if not entry_id.isdigit() or len(digest) != 64:
        raise CommandError(f"--expect-head must be ID:HASH (64 hex digits), not {expected!r}")
    entry = AuditEntry.objects.filter(id=int(entry_id)).first()
    if entry is None:
        return [f"entry {entry_id}: deleted (the log no longer reaches the recorded head)"]
    if entry.hash != digest.lower():
        return [f"entry {entry_id}: hash differs from the recorded head (altered or rewritten)"]
    return []


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (detects altered and deleted entries)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expect-head",
            metavar="ID:HASH",
            help="a head printed by an earlier run; fails if that entry was deleted or changed",
        )

    def handle(self, *args: object, **options: object) -> None:
        problems = verify_chain()
        if options.get("expect_head"):
            problems += check_head(str(options["expect_head"]))
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"audit log verification FAILED: {len(problems)} problem(s)")
        head = AuditEntry.objects.order_by("-id").values_list("id", "hash").first()
        self.stdout.write(f"audit log intact: {AuditEntry.objects.count()} entries")
        if head:
            self.stdout.write(f"head: {head[0]}:{head[1]} (keep it to detect truncation later)")
