"""Celery tasks of the loading app (thin: they call a service)."""

from __future__ import annotations

from celery import shared_task

from loading import relay_services as services


@shared_task(name="loading.supervise_conversations", ignore_result=True)
def supervise_conversations() -> list[str]:
    """Interrupt conversations whose agent went silent (enqueued by beat)."""
    return services.interrupt_silent_conversations()
