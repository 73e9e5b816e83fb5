"""J-LIS staff find a diagnosis by its reference number, with its steps, the job's step log and
the card conversation behind it. Read only: a diagnosis is evidence."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loading.advice import advice_for, explain_sw
from loading.models import Diagnosis
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

    @admin.display(description=_("操作の手順記録"))
    def job_steps(self, obj: Diagnosis) -> str:
        return format_html_join(
            "",
            "<div>{} · {} · {}</div>",
            (
                (e.get("label", ""), e.get("command", ""), explain_sw(e["sw"]) if e.get("sw") else "—")
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
