"""Fault diagnosis pages: start a diagnosis at a terminal, and the result as a checklist with the
advice beside the failed step. Thin: the services and selectors are in loading.diagnosis."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cardap.service_calendar import ServiceClosed
from gpcard.diagnosis import FAILED
from loading import diagnosis as services
from loading.advice import advice_for
from loading.engine import TerminalBusy
from loading.models import Diagnosis
from operators import policy
from operators.models import Terminal
from operators.policy import guard


class StartForm(forms.Form):
    terminal = forms.ModelChoiceField(queryset=Terminal.objects.none(), label=gettext_lazy("端末"))
    job_reference = forms.CharField(
        label=gettext_lazy("失敗した操作の番号（任意）"), max_length=60, required=False
    )

    def __init__(self, *args: object, provider_id: int | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        terminals = Terminal.objects.filter(provider_id=provider_id or 0, is_active=True)
        self.fields["terminal"].queryset = terminals  # type: ignore[attr-defined]


@guard(*policy.OPERATING_ROLES)  # the 障害診断 scope itself is checked by the service
def start(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = StartForm(request.POST or None, provider_id=getattr(user, "provider_id", None))
    if policy.valid_post(request, form):
        try:
            diag = services.start_diagnosis(
                operator=user,  # type: ignore[arg-type]
                terminal=form.cleaned_data["terminal"],
                job_reference=form.cleaned_data["job_reference"],
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or _("障害診断の権限がありません。"))
        except ServiceClosed as exc:
            form.add_error(None, exc.message)
        except TerminalBusy:
            form.add_error(
                "terminal", _("この端末では別のカード操作が実行中です。終わってから診断してください。")
            )
        else:
            return redirect("loading:diagnosis-detail", reference=diag.reference)
    return render(request, "loading/diagnosis_start.html", {"form": form}, status=400 if form.errors else 200)


@guard()
def detail(request: HttpRequest, reference: str) -> HttpResponse:
    diag = services.diagnoses_for(request.user).filter(reference=reference).first()  # type: ignore[arg-type]
    if diag is None:  # another provider's diagnosis answers like a missing one
        raise policy.not_found(request, reason="not_visible", reference=reference[:40])
    rows = services.checklist(diag)
    done = diag.state == Diagnosis.State.DONE
    advice = advice_for(diag.fault_class) if done else None
    failed = next((r for r in rows if r["status"] == FAILED), None)
    context = {"diag": diag, "rows": rows, "advice": advice, "failed": failed, "done": done}
    return render(request, "loading/diagnosis_detail.html", context)
