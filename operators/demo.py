"""Demo mode only: the current one-time code of a demo user's authenticator, so a newcomer signs in
without a second terminal (`manage.py demo_otp`, the demo sign-in page). Outside demo mode there is
no code to show: `current_code` returns None."""
from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from operators.models import Operator


@dataclass(frozen=True)
class DemoCode:
    code: str
    seconds_left: int


def current_code(user: Operator | str) -> DemoCode | None:
    """The code the user's confirmed authenticator shows now, or None (not demo mode, none enrolled)."""
    if not settings.DEMO:
        return None
    devices = TOTPDevice.objects.filter(confirmed=True)
    by_user = {"user__username": user} if isinstance(user, str) else {"user": user}
    device = devices.filter(**by_user).order_by("pk").first()
    if device is None:
        return None
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    # django-otp accepts a code for `tolerance` steps after its own, so it stays valid this long.
    left = device.step - int(time.time() - device.t0) % device.step + device.tolerance * device.step
    return DemoCode(f"{code:0{device.digits}d}", left)
