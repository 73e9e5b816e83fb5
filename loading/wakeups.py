"""Waking the agent that waits for work on a terminal (the relay's long poll).

``notify(terminal_id)`` is called when a conversation is queued for that terminal, once the
transaction has committed."""

from __future__ import annotations


def notify(terminal_id: int) -> None:
    """Wake the terminal's waiting poll. The relay's long poll plugs in here."""
