"""Supervision: a conversation whose agent went silent is interrupted by the periodic task, run by
a real Celery worker on the broker (Redis in CI); the service alone on the embedded default."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.utils import timezone

from loading import engine
from loading import relay_services as services
from loading.models import CardConversation
from loading.tasks import supervise_conversations
from operators.models import Terminal


def _terminal(world, name="窓口1") -> Terminal:
    return Terminal.objects.create(
        provider=world.city, name=name, location="1階", administrator=world.city_admin
    )


def _age(conv: CardConversation, seconds: int, field: str) -> None:
    CardConversation.objects.filter(pk=conv.pk).update(
        **{field: timezone.now() - dt.timedelta(seconds=seconds)}
    )


@pytest.mark.django_db
def test_silent_and_unclaimed_conversations_are_interrupted_and_live_ones_are_not(world):
    running = engine.start_conversation(terminal_id=_terminal(world).pk, program_name="identify", params={})
    engine.next_script(str(running.id), agent_session="a" * 32)
    _age(running, settings.RELAY_AGENT_SILENCE_SECONDS + 5, "last_activity_at")
    fresh = engine.start_conversation(
        terminal_id=_terminal(world, "窓口2").pk, program_name="identify", params={}
    )
    engine.next_script(str(fresh.id), agent_session="b" * 32)
    queued = engine.start_conversation(
        terminal_id=_terminal(world, "窓口3").pk, program_name="identify", params={}
    )
    _age(queued, settings.RELAY_PICKUP_SECONDS + 5, "created_at")
    just_queued = engine.start_conversation(
        terminal_id=_terminal(world, "窓口4").pk, program_name="identify", params={}
    )

    assert sorted(services.interrupt_silent_conversations()) == sorted([str(running.id), str(queued.id)])
    states = {c.pk: (c.state, c.error_code) for c in CardConversation.objects.all()}
    assert states[running.pk] == ("interrupted", "agent-silent")
    assert states[queued.pk] == ("interrupted", "agent-offline")
    assert states[fresh.pk] == ("running", "") and states[just_queued.pk] == ("queued", "")
    assert services.interrupt_silent_conversations() == []


@pytest.mark.django_db
def test_an_agent_answering_at_that_moment_is_not_cut_off(world):
    conv = engine.start_conversation(terminal_id=_terminal(world).pk, program_name="identify", params={})
    engine.next_script(str(conv.id), agent_session="a" * 32)
    cutoff = timezone.now() - dt.timedelta(seconds=1)  # what supervision saw as "silent since"
    assert engine.interrupt(str(conv.id), "agent-silent", idle_before=cutoff) is False
    conv.refresh_from_db()
    assert conv.state == "running"


def test_beat_runs_supervision():
    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "loading.supervise_conversations"
    )
    assert entry["schedule"] == settings.RELAY_SUPERVISE_SECONDS


@pytest.mark.celery
@pytest.mark.skipif(settings.CELERY_TASK_ALWAYS_EAGER, reason="no broker configured (embedded default)")
def test_the_worker_interrupts_a_silent_conversation(celery_worker_real, world):
    conv = engine.start_conversation(terminal_id=_terminal(world).pk, program_name="identify", params={})
    engine.next_script(str(conv.id), agent_session="a" * 32)
    _age(conv, settings.RELAY_AGENT_SILENCE_SECONDS + 5, "last_activity_at")
    supervise_conversations.delay()
    end = time.monotonic() + 20
    while time.monotonic() < end:
        conv.refresh_from_db()
        if conv.state != "running":
            break
        time.sleep(0.2)
    assert (conv.state, conv.error_code) == ("interrupted", "agent-silent")
