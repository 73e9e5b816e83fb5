"""Provider-admin pages (operators, scopes, terminals, credentials), the roster and the audit log.
Thin: permission checks and writes live in permissions/services, reads in selectors."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from operators import policy, selectors, services
from operators.audit import record
from operators.forms import (
    AuditSearchForm,
    OperatorCreateForm,
    OperatorEditForm,
    ScopeForm,
    TerminalForm,
    apply_validation_error,
)
from operators.models import Operator, Terminal
from operators.policy import R, guard


def _actor(request: HttpRequest) -> Operator:
    assert isinstance(request.user, Operator)
    return request.user


def _managed_operator(request: HttpRequest, pk: int) -> Operator:
    """The operator to change; another provider's answers 404 (audited) like a missing one."""
    return policy.get_or_404(request, Operator.objects.all(), pk=pk)


def _managed_terminal(request: HttpRequest, pk: int) -> Terminal:
    return policy.get_or_404(request, Terminal.objects.all(), pk=pk)


# --- operators ---------------------------------------------------------------------------------


@guard(R.PROVIDER_ADMIN)
@never_cache  # personal data: Cache-Control no-store
def people_list(request: HttpRequest) -> HttpResponse:
    people = selectors.people_page(request.user)
    return render(request, "operators/people_list.html", {"people": people})


@guard(R.PROVIDER_ADMIN, reauth=True)
@never_cache
def person_create(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = OperatorCreateForm(request.POST or None, actor=actor)
    if policy.valid_post(request, form):
        try:
            user, password = services.create_operator(
                actor=actor, provider_id=actor.provider_id or 0, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            return render(request, "operators/person_password.html", {"person": user, "password": password})
    return render(request, "operators/person_form.html", {"form": form, "creating": True})


@guard(R.PROVIDER_ADMIN, reauth=True)
@never_cache
def person_edit(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _actor(request)
    person = _managed_operator(request, pk)
    initial = {f: getattr(person, f) for f in ("last_name", "first_name", "email", "role", "is_active")}
    form = OperatorEditForm(request.POST or None, initial=initial, actor=actor)
    if policy.valid_post(request, form):
        try:
            services.update_operator(actor=actor, operator=person, request=request, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("「%(u)s」を更新しました。") % {"u": person.username})
            return redirect("operators:people")
    return render(request, "operators/person_form.html", {"form": form, "person": person})


@guard(R.PROVIDER_ADMIN, reauth=True)
@require_POST
def person_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """Reset password or authenticator; the new password is shown once."""
    person = _managed_operator(request, pk)
    if request.POST.get("what") == "otp":
        services.reset_authenticator(actor=_actor(request), operator=person, request=request)
        messages.success(
            request,
            _("「%(u)s」の認証アプリを解除しました。次回サインイン時に再登録します。")
            % {"u": person.username},
        )
        return redirect("operators:person_edit", pk=person.pk)
    password = services.reset_password(actor=_actor(request), operator=person, request=request)
    return render(request, "operators/person_password.html", {"person": person, "password": password})


@guard(R.PROVIDER_ADMIN, reauth=True)
@never_cache
def person_scopes(request: HttpRequest, pk: int) -> HttpResponse:
    person = _managed_operator(request, pk)
    form = ScopeForm(
        request.POST or None, provider_id=person.provider_id or 0, initial=ScopeForm.initial_from(person)
    )
    if policy.valid_post(request, form):
        try:
            services.set_scopes(actor=_actor(request), operator=person, grants=form.grants(), request=request)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("「%(u)s」の操作可能範囲を更新しました。") % {"u": person.username})
            return redirect("operators:people")
    return render(request, "operators/scopes_form.html", {"form": form, "person": person})


# --- terminals ---------------------------------------------------------------------------------


@guard(R.PROVIDER_ADMIN, R.TERMINAL_ADMIN)
def terminal_list(request: HttpRequest) -> HttpResponse:
    terminals = selectors.terminals_for(request.user)
    return render(request, "operators/terminal_list.html", {"terminals": terminals})


@guard(R.PROVIDER_ADMIN)
@never_cache
def terminal_create(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = TerminalForm(request.POST or None, provider_id=actor.provider_id or 0)
    if policy.valid_post(request, form):
        data = form.cleaned_data
        try:
            services.register_terminal(
                actor=actor,
                provider_id=actor.provider_id or 0,
                name=data["name"],
                location=data["location"],
                administrator=data["administrator"],
                request=request,
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("端末「%(t)s」を登録しました。") % {"t": data["name"]})
            return redirect("operators:terminals")
    return render(request, "operators/terminal_form.html", {"form": form, "creating": True})


@guard(R.PROVIDER_ADMIN)
@never_cache
def terminal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = _managed_terminal(request, pk)
    initial = {
        "name": terminal.name,
        "location": terminal.location,
        "administrator": terminal.administrator,
        "is_active": terminal.is_active,
    }
    form = TerminalForm(request.POST or None, initial=initial, provider_id=terminal.provider_id)
    if policy.valid_post(request, form):
        try:
            services.update_terminal(
                actor=_actor(request), terminal=terminal, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("端末「%(t)s」を更新しました。") % {"t": terminal.name})
            return redirect("operators:terminals")
    return render(request, "operators/terminal_form.html", {"form": form, "terminal": terminal})


@guard(R.PROVIDER_ADMIN, reauth=True)
@never_cache
def terminal_credential(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: confirm; POST action=issue: new credential (shown once); POST action=revoke."""
    terminal = _managed_terminal(request, pk)
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            services.revoke_terminal_credential(actor=_actor(request), terminal=terminal, request=request)
            messages.success(request, _("端末「%(t)s」の資格情報を失効させました。") % {"t": terminal.name})
            return redirect("operators:terminals")
        token = services.issue_terminal_credential(actor=_actor(request), terminal=terminal, request=request)
        return render(request, "operators/terminal_token.html", {"terminal": terminal, "token": token})
    return render(request, "operators/terminal_credential.html", {"terminal": terminal})


# --- roster (名簿, R2.3) -----------------------------------------------------------------------


ROSTER_GUARD = guard(
    *policy.ROSTER_ROLES, provider=False, message=gettext_lazy("名簿を閲覧する権限がありません。")
)


def _roster_provider(request: HttpRequest) -> Any:
    visible = selectors.providers_for(request.user)
    wanted = request.GET.get("provider")
    if wanted:
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        pk = int(wanted) if re.fullmatch(r"[0-9]{1,18}", wanted) else 0
        # Another provider's roster answers like one that does not exist (404, audited).
        provider = visible.filter(pk=pk).first()
        if provider is None:
            raise policy.not_found(request, reason="other_provider", provider=wanted[:20])
        return provider
    own = getattr(request.user, "provider", None)
    if own is not None:
        return own
    first = visible.first()
    if first is None:
        raise policy.deny(request, _("閲覧できるサービス提供者がありません。"), reason="no_provider")
    return first


@ROSTER_GUARD
@never_cache  # personal data: Cache-Control no-store
def roster(request: HttpRequest) -> HttpResponse:
    provider = _roster_provider(request)
    rows = selectors.roster_for(request.user, provider)
    return render(
        request,
        "operators/roster.html",
        {
            "provider": provider,
            "rows": rows,
            "providers": selectors.providers_for(request.user),
            "now": timezone.now(),
        },
    )


def _scope_text(scope: Any) -> str:
    terminals = (
        _("すべての端末") if scope.all_terminals else "・".join(t.name for t in scope.terminals.all()) or "-"
    )
    aps = (
        _("すべてのカードAP")
        if scope.all_card_aps
        else "・".join(a.name for a in scope.card_aps.all()) or "-"
    )
    return f"{scope.get_operation_display()}［{terminals}／{aps}］"


def _cell(value: str) -> str:
    # A cell starting with = + - @ would run as a formula in Excel (CSV injection): quote it.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def _csv_chunks(rows: Iterable[list[str]], encoding: str) -> Iterator[bytes]:
    """Encoded CSV, a few hundred rows at a time. cp932 replaces what it cannot encode; UTF-8
    starts with a byte order mark, so that Excel recognises the Japanese text."""
    encoder = codecs.getincrementalencoder("cp932" if encoding == "cp932" else "utf-8-sig")(errors="replace")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for n, row in enumerate(rows, 1):
        writer.writerow([_cell(str(v)) for v in row])
        if n % 500 == 0:
            yield encoder.encode(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    yield encoder.encode(buffer.getvalue(), final=True)


def _csv_response(rows: Iterable[list[str]], filename: str, encoding: str) -> StreamingHttpResponse:
    """Streams the rows: an export of the whole audit log never sits in memory at once."""
    content_type = "text/csv; charset=Shift_JIS" if encoding == "cp932" else "text/csv; charset=utf-8"
    response = StreamingHttpResponse(_csv_chunks(rows, encoding), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@ROSTER_GUARD
@never_cache  # personal data: Cache-Control no-store
def roster_csv(request: HttpRequest) -> StreamingHttpResponse:
    provider = _roster_provider(request)
    rows = selectors.roster_for(request.user, provider)
    table = [
        [
            _("サービス提供者"),
            _("ユーザー名"),
            _("氏名"),
            _("役割"),
            _("有効"),
            _("操作可能範囲"),
            _("担当端末（端末管理者）"),
            _("最終サインイン（日本時間）"),
        ]
    ]
    for row in rows:
        person = row.operator
        last = timezone.localtime(person.last_login).strftime("%Y-%m-%d %H:%M") if person.last_login else ""
        table.append(
            [
                provider.name,
                person.username,
                person.get_full_name(),
                str(person.get_role_display()),
                _("有効") if person.is_active else _("無効"),
                " ".join(_scope_text(s) for s in row.scopes),
                "・".join(f"{t.name}（{t.location}）" for t in row.administered),
                last,
            ]
        )
    record(action="roster.export", request=request, target=provider.name)
    encoding = "cp932" if request.GET.get("encoding") == "cp932" else "utf-8"
    stamp = timezone.localdate().strftime("%Y%m%d")
    return _csv_response(table, f"roster-{provider.pk}-{stamp}.csv", encoding)


# --- audit log ---------------------------------------------------------------------------------


AUDIT_GUARD = guard(
    *policy.AUDIT_ROLES, provider=False, message=gettext_lazy("監査ログを閲覧する権限がありません。")
)


def _audit_query(request: HttpRequest) -> tuple[AuditSearchForm, Any]:
    form = AuditSearchForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return form, selectors.audit_entries_for(request.user, **filters)


@AUDIT_GUARD
@never_cache  # personal data: Cache-Control no-store
def audit_log(request: HttpRequest) -> HttpResponse:
    form, entries = _audit_query(request)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "operators/audit.html", {"form": form, "page": page, "query": query.urlencode()})


def _audit_rows(entries: Any) -> Iterator[list[str]]:
    yield [
            _("番号"),
            _("日時（日本時間）"),
            _("実行者"),
            _("提供者ID"),
            _("操作"),
            _("接続元"),
            _("対象"),
            _("詳細"),
            _("ハッシュ"),
    ]
    for e in entries.iterator(chunk_size=2000):
        yield [
            str(e.id),
            timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            "" if e.provider_id_snapshot is None else str(e.provider_id_snapshot),
            e.action,
            e.ip or "",
            e.target,
            json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
            e.hash,
        ]


@AUDIT_GUARD
@never_cache  # personal data: Cache-Control no-store
def audit_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form, entries = _audit_query(request)
    if request.GET and not form.is_valid():
        # An export must match the search asked for; never fall back to the whole log.
        errors = "; ".join(str(m) for messages_ in form.errors.values() for m in messages_)
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    # The entry fixes the extent of the export (entries up to this id): later ones are not in it.
    entry = record(action="audit.export", request=request, detail={"rows": entries.count()})
    entries = entries.filter(id__lt=entry.id)
    encoding = "cp932" if request.GET.get("encoding") == "cp932" else "utf-8"
    return _csv_response(_audit_rows(entries), f"audit-{timezone.localdate():%Y%m%d}.csv", encoding)
