"""Fault diagnosis (R5): services (writes) and selectors (reads) for :class:`Diagnosis`.

- :func:`start_diagnosis` probes the card at a terminal (the ``diagnose`` program); when the
  agent's own report already says no reader, no card or not a My Number Card, it concludes at once.
- :func:`diagnose_job_log` classifies a failed operation from its own step log, without a probe.
- Failures that point at the service or the card stock rather than one card are reported to the
  provider's failure contact once per incident (``notify_failure``): a terminal whose jobs all
  fail (from its Job rows, when a job fails), keys rejected on several cards of one batch (from
  the failed jobs whose own log says so and the probes that found so).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from cardap.models import Provider
from cardap.service_calendar import JST, ServiceClosed, check_can_start_job, notify_failure
from gpcard.aid import Area
from gpcard.diagnosis import (
    FAILED,
    PASSED,
    FaultClass,
    Presence,
    ProbePlan,
    ProbeResult,
    classify,
    classify_job_log,
    presence_result,
)
from loading import engine
from loading.models import CardConversation, Diagnosis, Job
from operators.audit import record
from operators.models import Operation, Operator, Terminal
from operators.policy import check_scope, is_jlis, principal_of

log = logging.getLogger(__name__)

# A card batch (manufacturing lot) is told by the first 4 bytes of the CIN (8 hex digits).
BATCH_PREFIX = 8
KEYS_REJECTED_CARDS = 3  # distinct cards of one batch with keys rejected within the window
TERMINAL_FAILURES = 3  # consecutive failed jobs at one terminal, on more than one card
WINDOW = dt.timedelta(hours=24)


def authorize_diagnosis(operator: Operator, terminal: Terminal) -> None:
    """The one place diagnosis asks the access policy: the 障害診断 scope at this terminal."""
    check_scope(operator, operation=Operation.DIAGNOSE, terminal=terminal)


def _new(operator: Operator, terminal: Terminal, **fields: Any) -> Diagnosis:
    today = timezone.now().astimezone(JST).date()
    for _attempt in range(10):
        diag = Diagnosis(
            reference=Diagnosis.new_reference(today),
            provider_id=terminal.provider_id,
            terminal=terminal,
            operator=operator,
            **fields,
        )
        try:
            with transaction.atomic():
                diag.save(force_insert=True)
            return diag
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a diagnosis reference number")


def start_diagnosis(
    *,
    operator: Operator,
    terminal: Terminal,
    presence: Mapping[str, Any] | None = None,
    need_free: Mapping[str, int] | None = None,
    job_reference: str = "",
) -> Diagnosis:
    """Start probing the card at ``terminal`` (or conclude at once from the agent's report).

    Raises PermissionDenied (scope), ServiceClosed (hours, maintenance), engine.TerminalBusy."""
    authorize_diagnosis(operator, terminal)
    check_can_start_job()
    if presence is None:
        presence = reported_presence(terminal)
    plan = ProbePlan(
        presence=Presence.from_dict(presence),
        need_free={Area[k.upper()]: int(v) for k, v in (need_free or {}).items()},
    )
    params = plan.to_params() | {"provider_id": terminal.provider_id}
    with transaction.atomic():
        diag = _new(operator, terminal, job_reference=job_reference[:60])
        early = presence_result(plan)
        if early is not None:
            _finish(diag, early.to_dict(), classify(early))
        else:
            diag.conversation = engine.start_conversation(
                terminal_id=terminal.pk, program_name="diagnose", params=params
            )
            diag.save(update_fields=["conversation"])
        record(
            action="diagnosis.started",
            actor=operator,
            provider_id=terminal.provider_id,
            target=f"diagnosis:{diag.reference}",
            detail={"terminal": terminal.pk, "job": diag.job_reference},
        )
    return diag


def reported_presence(terminal: Terminal) -> dict[str, Any] | None:
    """What the terminal's agent last reported (reader, card, ATR), as the probe plan takes it;
    None when no agent is connected (nothing reported: the card is probed all the same)."""
    from loading.selectors import terminal_presence

    presence = terminal_presence(terminal)
    if not presence.online:
        return None
    if not presence.reader:
        return {"reader": False}
    return {"reader": True, "card": presence.card_present, "atr": presence.atr or None}


def refusal_code(exc: Exception) -> str:
    """The stable job error code of a server-side refusal."""
    if isinstance(exc, ServiceClosed):
        return "maintenance" if exc.reason == "maintenance" else "service-closed"
    if isinstance(exc, PermissionDenied):
        return "refused-scope"
    return str(getattr(exc, "code", "") or "refused")


def diagnose_job_log(
    *,
    operator: Operator,
    terminal: Terminal,
    job_reference: str,
    job_log: Iterable[Mapping[str, Any]],
    error_code: str = "",
    card_id: str = "",
) -> Diagnosis:
    """Classify a failed operation from its own step log, without a new probe."""
    authorize_diagnosis(operator, terminal)
    entries = [dict(e) for e in job_log]
    fault = classify_job_log(entries, error_code)
    steps = []
    for index, entry in enumerate(entries):
        sw = str(entry.get("sw", ""))
        ok = sw.upper() in ("9000", "6310") and not entry.get("code")
        steps.append(
            {
                "step": f"job:{index}",
                "status": PASSED if ok else FAILED,
                "command": str(entry.get("command", "")),
                "sw": sw.upper(),
                "finding": str(entry.get("code", "")),
                "detail": {"label": str(entry.get("label") or entry.get("step", ""))},
            }
        )
    if error_code and not any(s["status"] == FAILED for s in steps):
        steps.append({"step": "job:end", "status": FAILED, "finding": error_code})
    with transaction.atomic():
        diag = _new(
            operator,
            terminal,
            source=Diagnosis.Source.JOB,
            job_reference=job_reference[:60],
            job_log=entries,
            card_id=card_id,
        )
        _finish(diag, {"steps": steps, "facts": {"error_code": error_code}}, fault)
        # The incident this failure is part of, if one is open (it was reported when the job failed).
        incident = None
        if fault == FaultClass.KEYS_REJECTED:
            incident = _batch_incident(diag.card_id, diag.reference)
        if incident is None and fault not in (FaultClass.SERVER_REFUSED, FaultClass.NO_FAULT):
            incident = _terminal_incident(terminal)
        if incident is not None:
            diag.incident_key = incident[0]
            diag.save(update_fields=["incident_key"])
        record(
            action="diagnosis.started",
            actor=operator,
            provider_id=terminal.provider_id,
            target=f"diagnosis:{diag.reference}",
            detail={"terminal": terminal.pk, "job": diag.job_reference, "from": "job log"},
        )
    return diag


def _finish(diag: Diagnosis, result: dict[str, Any] | None, fault: FaultClass) -> None:
    card_id = str((result or {}).get("facts", {}).get("cin", "")) or diag.card_id
    diag.complete(result=result, fault_class=fault.value, card_id=card_id)
    diag.save()
    record(
        action="diagnosis.completed",
        actor="system",
        provider_id=diag.provider_id,
        target=f"diagnosis:{diag.reference}",
        detail={"class": diag.fault_class},
    )
    _report_if_systemic(diag)


@receiver(engine.conversation_ended, sender=CardConversation)
def _conversation_ended(sender: Any, conversation: CardConversation, **_kwargs: Any) -> None:
    if conversation.program != "diagnose":
        return
    diag = Diagnosis.objects.select_for_update().filter(conversation=conversation).first()
    if diag is None or diag.state == Diagnosis.State.DONE:
        return
    if conversation.state == CardConversation.State.FINISHED and isinstance(conversation.outcome, dict):
        _finish(diag, conversation.outcome, classify(conversation.outcome))
        return
    # The conversation broke off: the card went away mid-command, or the agent went silent.
    lost = conversation.state == CardConversation.State.INTERRUPTED or conversation.error_code == "card-lost"
    fault = FaultClass.COMMUNICATION_LOST if lost else FaultClass.UNCLASSIFIED
    result = {
        "steps": [{"step": "conversation", "status": FAILED, "finding": conversation.error_code}],
        "facts": {"conversation_state": conversation.state},
    }
    _finish(diag, result, fault)


# --- failures of the service or the card stock ----------------------------------------------
#
# Computed from the evidence each rule is about: a terminal's own jobs (Job rows: the failed
# operations at that terminal in the window), and for a card batch every failed job whose own
# log says the keys were rejected plus the probes that found so (a probe leaves no job).

FAILED_JOBS = (Job.State.FAILED, Job.State.INTERRUPTED)


def _job_card(job: Job) -> str:
    return (job.card_id or job.expected_card).upper()


def _keys_rejected_cards(batch: str, since: dt.datetime) -> set[str]:
    """Distinct cards of ``batch`` (CIN prefix) with their keys rejected since ``since``."""
    jobs = Job.objects.filter(state__in=FAILED_JOBS, finished_at__gte=since).filter(
        Q(card_id__istartswith=batch) | Q(card_id="", expected_card__istartswith=batch)
    )
    cards = {
        _job_card(j)
        for j in jobs.only("card_id", "expected_card", "steps", "error_code")
        if classify_job_log(j.steps, j.error_code) == FaultClass.KEYS_REJECTED
    }
    probes = Diagnosis.objects.filter(
        source=Diagnosis.Source.PROBE,
        state=Diagnosis.State.DONE,
        fault_class=FaultClass.KEYS_REJECTED,
        finished_at__gte=since,
        card_id__istartswith=batch,
    )
    return cards | {c.upper() for c in probes.values_list("card_id", flat=True)}


def _batch_incident(card_id: str, reference: str) -> tuple[str, str, str] | None:
    if len(card_id) < BATCH_PREFIX:
        return None
    batch = card_id[:BATCH_PREFIX].upper()
    cards = _keys_rejected_cards(batch, timezone.now() - WINDOW)
    if len(cards) < KEYS_REJECTED_CARDS:
        return None
    day = timezone.now().astimezone(JST).date().isoformat()
    summary = _("同じ製造ロット（%(batch)s）の複数のカードで鍵の認証に失敗") % {"batch": batch}
    detail = _(
        "%(n)d 枚のカードで相互認証に失敗しました。"
        "鍵の登録またはカードの製造に問題がある可能性があります。受付番号: %(ref)s"
    ) % {"n": len(cards), "ref": reference}
    return f"keys-rejected-batch:{batch}:{day}", summary, detail


def _terminal_incident(terminal: Terminal) -> tuple[str, str, str] | None:
    """The terminal's last TERMINAL_FAILURES finished jobs in the window all failed, on more than
    one card (refusals are the server's rules, not the terminal's: they are left out)."""
    last = list(
        Job.objects.filter(terminal=terminal, finished_at__gte=timezone.now() - WINDOW)
        .exclude(state__in=(*Job.ACTIVE_STATES, Job.State.REFUSED))
        .order_by("-finished_at")[:TERMINAL_FAILURES]
    )
    if len(last) < TERMINAL_FAILURES or any(j.state not in FAILED_JOBS for j in last):
        return None
    if len({_job_card(j) or str(j.pk) for j in last}) < 2:
        return None  # one card failing again and again is that card's fault
    day = timezone.now().astimezone(JST).date().isoformat()
    summary = _("端末「%(t)s」の操作が続けて失敗") % {"t": terminal.name}
    detail = _(
        "端末「%(t)s」で %(n)d 件続けて、異なるカードで操作が失敗しました。"
        "端末・リーダ・通信の問題の可能性があります。操作: %(refs)s"
    ) % {"t": terminal.name, "n": len(last), "refs": ", ".join(str(j.pk) for j in reversed(last))}
    return f"terminal-failures:{terminal.pk}:{day}", summary, detail


def _notify(provider_id: int, incident: tuple[str, str, str]) -> None:
    key, summary, detail = incident
    provider = Provider.objects.get(pk=provider_id)
    transaction.on_commit(lambda: notify_failure(provider, key, summary, detail))


def job_failed(job: Job) -> None:
    """A card job ended failed or interrupted: does it make (or add to) an incident?"""
    fault = classify_job_log(job.steps, job.error_code)
    incident = None
    if fault == FaultClass.KEYS_REJECTED:
        incident = _batch_incident(_job_card(job), str(job.pk))
    if incident is None:
        incident = _terminal_incident(job.terminal)
    if incident is not None:
        _notify(job.provider_id, incident)


def _report_if_systemic(diag: Diagnosis) -> None:
    """A probe that found the keys rejected is evidence for its card's batch (a failed job is
    counted when it fails: see :func:`job_failed`)."""
    if diag.source != Diagnosis.Source.PROBE or diag.fault_class != FaultClass.KEYS_REJECTED:
        return
    incident = _batch_incident(diag.card_id, diag.reference)
    if incident is None:
        return
    Diagnosis.objects.filter(pk=diag.pk).update(incident_key=incident[0])
    diag.incident_key = incident[0]
    _notify(diag.provider_id, incident)


# --- selectors -------------------------------------------------------------------------------


def diagnoses_for(user: Operator) -> QuerySet[Diagnosis]:
    """Diagnoses a user may read: J-LIS staff all; anyone else those of their own provider."""
    qs = Diagnosis.objects.select_related("terminal", "operator", "provider", "conversation")
    if is_jlis(user):
        return qs
    provider_id = principal_of(user).provider_id
    return qs.filter(provider_id=provider_id) if provider_id is not None else qs.none()


def checklist(diag: Diagnosis) -> list[dict[str, Any]]:
    """The steps as the page shows them: label, status, and for the failed one its evidence."""
    from loading.advice import AREA_LABELS, STEP_LABELS, explain_sw

    rows = []
    for step in ProbeResult.from_dict(diag.result or {}).steps:
        if step.kind == "job":
            label = step.detail.get("label") or step.command or step.finding
        elif step.kind == "conversation":
            label = _("カードとの通信")
        else:
            label = str(STEP_LABELS.get(step.kind, step.kind))
            if step.kind in ("area_sd", "scp03", "memory"):
                label = f"{label}: {AREA_LABELS.get(step.subject, step.subject)}"
            elif step.kind == "ap":
                label = f"{label}: {step.subject}"
        rows.append(
            {
                "label": label,
                "status": step.status,
                "command": step.command,
                "sw": explain_sw(step.sw) if step.sw else "",
                "detail": step.detail,
            }
        )
    return rows
