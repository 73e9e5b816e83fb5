"""System check: production must configure both revocation keys (`manage.py check`)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def revocation_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from revocation import keys

    errors: list[checks.CheckMessage] = []
    for getter, check_id in (
        (keys.feed_public_key, "revocation.E001"),
        (keys.signing_key, "revocation.E002"),
    ):
        getter.cache_clear()
        try:
            getter()
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id=check_id))
        finally:
            getter.cache_clear()
    return errors
