"""Helpers for the revocation tests: signed feeds in a temporary directory, card APs and
installations (the card-to-AP mapping that loading writes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cardap.models import CardAP, CardAPInstallation
from revocation import feedfile

JST = dt.timezone(dt.timedelta(hours=9))


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=JST)


def write(directory: Path, number: int, changes, previous: int | None | str = "auto") -> Path:
    prev = (number - 1 or None) if previous == "auto" else previous
    return feedfile.write_feed(
        directory, number=number, previous=prev, changes=changes, private_key=feedfile.demo_private_key()
    )


def install(card: str, ap: CardAP, user_number: str, state: str = "personalised") -> CardAPInstallation:
    return CardAPInstallation.objects.create(card_id=card, card_ap=ap, user_number=user_number, state=state)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The shared world creates several users; a fast hasher keeps these tests to seconds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
