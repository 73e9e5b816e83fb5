"""A console mail backend for demo mode: one readable line per message (recipients and subject in
plain text) instead of Django's console backend, which prints every whole MIME message with its
Japanese body in base64."""
from __future__ import annotations

import sys
from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class SummaryConsoleBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            to = ", ".join(message.recipients())
            sys.stdout.write(f"[mail] to {to}: {message.subject}\n")
        sys.stdout.flush()
        return len(email_messages)
