"""Manual revocation sync: ``manage.py sync_revocations [--dir D | --url https://… | --file F]``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from revocation import services
from revocation.models import Feed


class Command(BaseCommand):
    help = "Take in new revocation feeds from a directory or an HTTPS URL (default: the configured source)."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--dir", type=Path, help="directory holding revocation-feed-*.jsonl and .sig files"
        )
        source.add_argument("--url", help="HTTPS base URL serving index.txt and the feed files")
        source.add_argument("--file", type=Path, help="one feed file (its .sig next to it)")

    def handle(self, *args: object, **options: object) -> None:
        directory, url, file = options.get("dir"), options.get("url"), options.get("file")
        try:
            if isinstance(file, Path):
                feeds = [services.apply_feed(path=file)]
            elif isinstance(directory, Path):
                if not directory.is_dir():
                    raise CommandError(f"not a directory: {directory}")
                feeds = services.sync_directory(directory=directory)
            elif isinstance(url, str):
                feeds = services.sync_url(base_url=url)
            else:
                feeds = services.sync_configured_source()
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if not feeds:
            self.stdout.write("no new feed")
        for feed in feeds:
            line = f"feed {feed.number}: {feed.state}"
            if feed.state == Feed.State.REJECTED:
                where = f" line {feed.reason_line}" if feed.reason_line else ""
                self.stderr.write(f"{line} [{feed.reason_code}{where}] {feed.reason}")
            else:
                self.stdout.write(
                    f"{line} ({feed.cards_changed} cards changed, {feed.entries_created} entries)"
                )
        if any(feed.state == Feed.State.REJECTED for feed in feeds):
            raise CommandError("a feed was refused; see above")
