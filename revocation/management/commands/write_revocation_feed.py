"""Write a signed revocation feed (tests, demo, benchmark): see revocation.feedfile."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandParser

from revocation import feedfile


class Command(BaseCommand):
    help = "Write a signed revocation feed file and its .sig (default key: the DEMO-ONLY key)."

    def add_arguments(self, parser: CommandParser) -> None:
        feedfile.add_arguments(parser)

    def handle(self, *args: str, **options: object) -> None:
        self.stdout.write(str(feedfile.run(argparse.Namespace(**options))))
