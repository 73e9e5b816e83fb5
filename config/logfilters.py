"""Logging filters that keep the console readable."""
from __future__ import annotations

import logging


class ExpectedRefusals(logging.Filter):
    """Django logs every 403 and 404 with the whole traceback of PermissionDenied/Http404. They are
    expected answers (and the 403s are in the audit log), so keep the one-line message only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in (403, 404):
            record.exc_info = None
            record.exc_text = None
        return True
