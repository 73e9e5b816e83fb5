"""The operator's card job screens: terminal page → read card → load / delete / move-in →
confirmation with the holder's consent → live progress → result → job history (CSV). Thin:
rules and writes in loading.services, reads in loading.job_selectors."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from cardap.models import CardAP
from cardap.selectors import presets_for
from loading import job_selectors as sel
from loading import services
from loading.forms import JobHistoryFilter, confirm_form
from loading.models import Job
from loading.rules import JobRefused
from loading.selectors import terminal_presence
from operators import policy
from operators.audit import record
from operators.models import Operator, Terminal
from operators.views import _csv_response


def _operator(request: HttpRequest) -> Operator:
    assert isinstance(request.user, Operator)
    return request.user


def _terminal(request: HttpRequest, pk: int) -> Terminal:
    """A terminal the caller may operate; another provider's (or a non-operating role) is a 404."""
    terminal = sel.operating_terminals(request.user).filter(pk=pk).first()
    if terminal is None:
        raise policy.not_found(request, reason="not_operable", terminal=pk)
    return terminal


def _key(request: HttpRequest) -> str:
    return f"{request.user.pk}:{request.POST.get('request_key', '')[:40] or uuid.uuid4().hex}"


def _refused(request: HttpRequest, exc: JobRefused, terminal: Terminal) -> HttpResponse:
    messages.error(request, str(exc))
    return redirect("jobs:terminal", pk=terminal.pk)


@require_GET
@policy.guard(*policy.OPERATING_ROLES, message=gettext_lazy("この役割ではカードの操作はできません。"))
def terminal_list(request: HttpRequest) -> HttpResponse:
    terminals = sel.operating_terminals(request.user)
    return render(request, "loading/terminal_list.html", {"terminals": terminals})


@require_GET
def terminal_page(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = _terminal(request, pk)
    operator = _operator(request)
    read = sel.last_read(terminal, operator)
    context: dict[str, Any] = {
        "terminal": terminal,
        "presence": terminal_presence(terminal),
        "read": read,
        "card": sel.card_view(read, operator.provider_id) if read is not None else None,
        "active": Job.objects.filter(terminal=terminal, state__in=Job.ACTIVE_STATES).first(),
        "recent": sel.jobs_for(request.user).filter(terminal=terminal)[:10],
        "request_key": uuid.uuid4().hex,
    }
    return render(request, "loading/terminal.html", context)


@require_POST
def read_card(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = _terminal(request, pk)
    try:
        job = services.start_read(
            operator=_operator(request), terminal=terminal, request_key=_key(request), request=request
        )
    except JobRefused as exc:
        return _refused(request, exc, terminal)
    return redirect("jobs:job", pk=job.pk)


def _chosen(request: HttpRequest, operator: Operator) -> list[CardAP]:
    assert operator.provider is not None
    allowed = policy.card_aps_loadable_by(operator.provider).order_by("name")
    preset = request.GET.get("preset") or request.POST.get("preset")
    if preset:
        found = presets_for(operator.provider).filter(pk=preset).first()
        if found is None:
            raise policy.not_found(request, reason="other_provider", preset=preset[:20])
        return [ap for ap in found.ordered_card_aps() if allowed.filter(pk=ap.pk).exists()]
    ids = [int(v) for v in (request.GET.getlist("ap") or request.POST.getlist("ap")) if v.isdigit()]
    return list(allowed.filter(pk__in=ids))


def load(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose APs (checkboxes or a preset) → confirmation (user numbers, PINs, consent) → start."""
    terminal = _terminal(request, pk)
    operator = _operator(request)
    assert operator.provider is not None
    read = sel.last_read(terminal, operator)
    if read is None:
        messages.error(request, _("先にカードを読み取ってください。"))
        return redirect("jobs:terminal", pk=terminal.pk)
    card = sel.card_view(read, operator.provider_id)
    chosen = _chosen(request, operator)
    if not chosen:
        on_card = {aid for a in card["content"].areas.values() for aid in a.instances}
        loadable = policy.card_aps_loadable_by(operator.provider).order_by("name")
        choices = [ap for ap in loadable if ap.aid not in on_card]
        return render(
            request,
            "loading/load_choose.html",
            {
                "terminal": terminal,
                "card": card,
                "choices": choices,
                "presets": presets_for(operator.provider),
            },
        )
    form = confirm_form(chosen, request.POST if request.method == "POST" else None)
    if request.method != "POST":
        form.initial["request_key"] = uuid.uuid4().hex
    preview = _preview(card, chosen)
    if request.method == "POST" and form.is_valid():
        items = []
        for ap in chosen:
            pin = form.cleaned_data.get(f"pin_{ap.pk}", "")
            if pin != form.cleaned_data.get(f"pin2_{ap.pk}", ""):
                form.add_error(f"pin2_{ap.pk}", _("暗証番号が一致しません。もう一度入力してください。"))
            items.append(services.LoadItem(ap, form.cleaned_data.get(f"user_{ap.pk}", ""), pin))
        if not form.errors:
            try:
                job = services.start_load(
                    operator=operator,
                    terminal=terminal,
                    read_job=read,
                    items=items,
                    consent=form.cleaned_data["consent"],
                    resident_confirmed=form.cleaned_data.get("resident", False),
                    request_key=_key(request),
                    request=request,
                )
            except JobRefused as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("jobs:job", pk=job.pk)
    return render(
        request,
        "loading/load_confirm.html",
        {"terminal": terminal, "card": card, "chosen": chosen, "form": form, "preview": preview},
    )


def _preview(card: dict[str, Any], chosen: list[CardAP]) -> list[dict[str, Any]]:
    """Each area's use after the load (the capacity preview)."""
    out = []
    for area in card["areas"]:
        need = sum(ap.memory_cost or 0 for ap in chosen if (ap.area == "local") == (area["key"] == "local"))
        out.append({**area, "need": need, "after": area["used"] + need, "fits": need <= area["free"]})
    return out


def delete(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = _terminal(request, pk)
    operator = _operator(request)
    read = sel.last_read(terminal, operator)
    if read is None:
        messages.error(request, _("先にカードを読み取ってください。"))
        return redirect("jobs:terminal", pk=terminal.pk)
    card = sel.card_view(read, operator.provider_id)
    error = ""
    if request.method == "POST":
        ids = [int(v) for v in request.POST.getlist("ap") if v.isdigit()]
        aps = [m["ap"] for m in card["mine"] if m["ap"].pk in ids]
        try:
            job = services.start_delete(
                operator=operator,
                terminal=terminal,
                read_job=read,
                card_aps=aps,
                consent=request.POST.get("consent") == "on",
                request_key=_key(request),
                request=request,
            )
        except JobRefused as exc:
            error = str(exc)
        else:
            return redirect("jobs:job", pk=job.pk)
    return render(
        request,
        "loading/delete.html",
        {"terminal": terminal, "card": card, "error": error, "request_key": uuid.uuid4().hex},
    )


def move_in(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = _terminal(request, pk)
    operator = _operator(request)
    read = sel.last_read(terminal, operator)
    if read is None:
        messages.error(request, _("先にカードを読み取ってください。"))
        return redirect("jobs:terminal", pk=terminal.pk)
    card = sel.card_view(read, operator.provider_id)
    error = ""
    if request.method == "POST":
        try:
            job = services.start_move_in(
                operator=operator,
                terminal=terminal,
                read_job=read,
                consent=request.POST.get("consent") == "on",
                resident_confirmed=request.POST.get("resident") == "on",
                request_key=_key(request),
                request=request,
            )
        except JobRefused as exc:
            error = str(exc)
        else:
            return redirect("jobs:job", pk=job.pk)
    local = len(card["content"].areas["local"].instances)
    return render(
        request,
        "loading/move_in.html",
        {"terminal": terminal, "card": card, "local": local, "error": error, "request_key": uuid.uuid4().hex},
    )


def _job(request: HttpRequest, pk: str) -> Job:
    return get_object_or_404(sel.jobs_for(request.user), pk=pk)


@require_GET
def job_page(request: HttpRequest, pk: str) -> HttpResponse:
    job = _job(request, pk)
    card = (
        sel.card_view(job, job.provider_id) if job.content is not None and job.kind == Job.Kind.READ else None
    )
    return render(request, "loading/job.html", {"job": job, "card": card, "status": _status(job)})


def _status(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "state": job.state,
        "state_label": str(job.get_state_display()),
        "active": job.is_active,
        "step": job.step_label,
        "steps": [{"step": s["step"], "command": s["command"], "sw": s["sw"]} for s in job.steps],
        "error_code": job.error_code,
        "error_message": job.error_message,
    }


@require_GET
@never_cache
def job_status(request: HttpRequest, pk: str) -> JsonResponse:
    return JsonResponse(_status(_job(request, pk)))


def _history(request: HttpRequest) -> tuple[JobHistoryFilter, Any]:
    form = JobHistoryFilter(request.GET or None)
    qs = sel.jobs_for(request.user)
    if form.is_valid():
        d = form.cleaned_data
        if d["kind"]:
            qs = qs.filter(kind=d["kind"])
        if d["state"]:
            qs = qs.filter(state=d["state"])
        if d["terminal"]:
            qs = qs.filter(terminal_id=d["terminal"])
        if d["since"]:
            qs = qs.filter(created_at__date__gte=d["since"])
        if d["until"]:
            qs = qs.filter(created_at__date__lte=d["until"])
    return form, qs


@require_GET
@policy.guard(provider=False)  # every role; _history keeps each to its own jobs
def job_list(request: HttpRequest) -> HttpResponse:
    form, qs = _history(request)
    return render(
        request, "loading/job_list.html", {"form": form, "jobs": qs[:200], "query": request.GET.urlencode()}
    )


@require_GET
@policy.guard(provider=False)
def job_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, qs = _history(request)
    rows = [[_("開始日時"), _("端末"), _("操作者"), _("種別"), _("状態"), _("カードAP"), _("エラー")]]
    for job in qs[:5000]:
        aps = "、".join(str(i.card_ap.name) for i in job.items.select_related("card_ap") if i.card_ap)
        rows.append(
            [
                timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                job.terminal.name,
                job.operator.username,
                str(job.get_kind_display()),
                str(job.get_state_display()),
                aps,
                job.error_code,
            ]
        )
    record(action="job.history_export", request=request, detail={"rows": len(rows) - 1})
    return _csv_response(rows, "jobs.csv", request.GET.get("encoding", "utf-8"))


@require_POST
def diagnose(request: HttpRequest, pk: str) -> HttpResponse:
    """Classify a failed job from its own step log (fault diagnosis, R5)."""
    from loading import diagnosis

    job = _job(request, pk)
    ended = (Job.State.FAILED, Job.State.INTERRUPTED, Job.State.REFUSED)
    if job.state not in ended or job.provider_id != getattr(
        request.user, "provider_id", None
    ):
        raise policy.not_found(request, reason="not_diagnosable", job=str(job.pk))
    try:
        diag = diagnosis.diagnose_job_log(
            operator=_operator(request),
            terminal=job.terminal,
            job_reference=str(job.pk),
            job_log=job.steps,
            error_code=job.error_code,
            card_id=job.card_id,
        )
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("jobs:job", pk=job.pk)
    return redirect("loading:diagnosis-detail", reference=diag.reference)
