"""Demo only: a first signed feed (DEMO-ONLY key) in the configured directory, then a sync, so the
history page and the provider API have something to show. Idempotent."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from revocation import feedfile, services


class Command(BaseCommand):
    help = "Write a demo revocation feed (DEMO-ONLY key) if there is none, and sync it."

    def handle(self, *args: object, **options: object) -> None:
        if not (settings.DEMO or settings.DEBUG):
            raise CommandError("demo only (CARDAP_DEMO=1)")
        directory = Path(settings.REVOCATION_FEED_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        if not any(feedfile.FILE_RE.match(p.name) for p in directory.iterdir()):
            feedfile.write_feed(
                directory,
                number=1,
                previous=None,
                changes=feedfile.random_changes(20, cards=15),
                private_key=feedfile.demo_private_key(),
            )
        for feed in services.sync_directory(directory=directory):
            self.stdout.write(f"revocation feed {feed.number}: {feed.state}")
