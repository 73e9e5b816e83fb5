"""J-LIS staff find a diagnosis by its reference number, with its steps, the job's step log and
the card conversation behind it. Read only: a diagnosis is evidence."""

from __future__ import annotations

import json
import uuid

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loading.advice import advice_for, explain_sw
from loading.models import Diagnosis, Job
from operators.admin_site import ReadOnlyAdmin


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyAdmin):
    list_display = ["reference", "provider", "terminal", "fault_class", "state", "card_id", "created_at"]
    list_filter = ["fault_class", "state", "source", "provider"]
    search_fields = ["reference", "card_id", "job_reference", "incident_key"]
    FIELDS = (
        "reference",
        "provider",
        "terminal",
        "operator",
        "source",
        "state",
        "fault_class",
        "advice",
        "card_id",
        "job_reference",
        "job",
        "incident_key",
        "steps",
        "job_steps",
        "conversation_steps",
        "created_at",
        "finished_at",
    )
    fields = FIELDS
    readonly_fields = FIELDS

    @admin.display(description=_("案内"))
    def advice(self, obj: Diagnosis) -> str:
        return str(advice_for(obj.fault_class).title) if obj.fault_class else ""

    @admin.display(description=_("確認項目"))
    def steps(self, obj: Diagnosis) -> str:
        rows = (obj.result or {}).get("steps", [])
        return format_html_join(
            "",
            "<div>{} — {} {} {}</div>",
            (
                (
                    s.get("step", ""),
                    s.get("status", ""),
                    s.get("finding", ""),
                    f"{s.get('command', '')} {explain_sw(s['sw'])}" if s.get("sw") else s.get("command", ""),
                )
                for s in rows
            ),
        )

    @admin.display(description=_("対象の操作"))
    def job(self, obj: Diagnosis) -> str:
        """The job the diagnosis is about (its reference is the job's id): kind, state, error,
        terminal and when it started."""
        try:
            pk = uuid.UUID(obj.job_reference)
        except ValueError:
            return ""
        job = Job.objects.select_related("terminal").filter(pk=pk).first()
        if job is None:
            return ""
        return format_html(
            '<span class="diagnosis-job">{} · {} · {} · {} · {}</span>',
            job.get_kind_display(),
            job.get_state_display(),
            job.error_code or "—",
            job.terminal.name,
            timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        )

    @admin.display(description=_("操作の手順記録"))
    def job_steps(self, obj: Diagnosis) -> str:
        return format_html_join(
            "",
            "<div>{} · {} · {}</div>",
            (
                (
                    e.get("label") or e.get("step", ""),
                    e.get("command", ""),
                    explain_sw(e["sw"]) if e.get("sw") else "—",
                )
                for e in obj.job_log
            ),
        )

    @admin.display(description=_("カード通信"))
    def conversation_steps(self, obj: Diagnosis) -> str:
        conv = obj.conversation
        if conv is None:
            return ""
        labels = [f"{e['label']} ({e['sent']} → {len(e['responses'])})" for e in conv.transcript]
        return format_html(
            "<code>{}</code> {} {}", conv.id, conv.get_state_display(), json.dumps(labels, ensure_ascii=False)
        )
