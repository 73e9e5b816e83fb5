"""The one access policy: who is calling, and may they do this to this object.

Every entry point (function and class views, DRF views, the admin, the relay, Celery tasks) asks
this module; none decides on its own. It sits at the bottom of the apps: it imports nothing from
them (models of other apps are reached by their lazy "app.Model" name).

Who is calling: one typed principal
    principal_of(x) -> Principal   x: a request (Django or DRF), an Operator, a provider API
                                   client, a Terminal, a Principal, or None (anonymous)
    SYSTEM                         the system itself (Celery tasks, management commands)
    Principal.kind                 "operator" | "api_client" | "terminal" | "system" | "anonymous"
    Principal.provider_id          the tenant; None for J-LIS staff, system-wide auditors, SYSTEM

May this principal ... (predicates: True/False, no side effect)
    is_jlis(p)                     J-LIS staff (a verified operator with that role)
    has_role(p, *roles)            an operator with one of `roles`
    may_access_provider(p, provider_id, read=False)
                                   tenant restriction: own provider; J-LIS staff any; a
                                   system-wide auditor any, for reading
    can_manage_provider(p, id)     J-LIS staff, or that provider's administrator
    can_read_audit(p), can_read_roster(p)
    may_open(request, url_name)    the guard of that page admits the caller (menus, home tiles)
    has_recent_code(request)       a one-time code entered within settings.REAUTH_SECONDS
    has_scope(operator, operation=, terminal=, card_ap=)

Card APs a provider may load / see (the one rule each)
    card_aps_loadable_by(provider) approved; own, or co-provided ("shared") via a share in force;
                                   local-resident area APs only for their own municipality
    card_aps_visible_to(provider)  approved or retired; own, shared or affiliated while the
                                   relationship is in force
    shares_in_force(provider_id)   the usage relationships in force on a day

Refusing (always audited the same way: one `permission.denied` entry, then raise)
    deny(request_or_principal, message, reason=..., **detail) -> PermissionDenied   (403)
    not_found(request_or_principal, reason=..., **detail)     -> Http404            (404)
    get_or_404(request, queryset, **lookup)   one object the caller may see; another
                                   provider's object is a 404 exactly like a missing one
    valid_post(request, form)      POST and valid; an id outside the offered choices (forged,
                                   or another provider's) is audited as a refusal
    check_scope(operator, operation=, terminal=, card_ap=, request=)   R2.2, raises deny()

Guards, one per kind of entry point
    @guard(*roles, provider=True, reauth=False)     function views
    GuardMixin (roles, provider, reauth attributes)  class-based views
    PrincipalPermission (kinds, roles attributes)     DRF views (refusals audited)
    @reauth_required                                  recent code only
    @system_task                                      Celery tasks: run as SYSTEM, refusals audited
    operators.admin_site.JLISAdminSite / AuditedAdmin the admin (J-LIS staff, recent code for
                                                      every write, every write audited)

Typical use
    @guard(R.PROVIDER_ADMIN, reauth=True)                       # a provider admin's page
    def person_edit(request, pk):
        person = get_or_404(request, Operator.objects.all(), pk=pk)

    class RelayStep(APIView):                                   # the terminal agent
        authentication_classes = [TerminalAuthentication]
        permission_classes = [PrincipalPermission.of(Principal.TERMINAL)]
        ...  check_scope(job.operator, operation="load", terminal=principal_of(request).terminal,
                         card_ap=job.card_ap, request=request)

    @shared_task
    @system_task
    def supervise(job_id): ...                                  # services get actor=SYSTEM
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from operators.audit import record
from operators.models import Operation, Operator, OperatorScope, Terminal

R = Operator.Role
# Roles that may run card operations at all (within their scope). J-LIS staff administer the
# system and auditors only read: neither operates on citizens' cards.
OPERATING_ROLES = frozenset({R.OPERATOR, R.TERMINAL_ADMIN, R.PROVIDER_ADMIN})
# Who reads what beside their own work: the audit log is for J-LIS staff and auditors; the roster
# of authorised people for everyone who answers for people or terminals, and auditors.
AUDIT_ROLES = (R.JLIS_STAFF, R.AUDITOR)
ROSTER_ROLES = (R.JLIS_STAFF, R.PROVIDER_ADMIN, R.TERMINAL_ADMIN, R.AUDITOR)
REAUTH_AT = "operators.reauth_at"  # session key: time.time() of the last code entered

View = TypeVar("View", bound=Callable[..., Any])


# --- the principal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is calling. `name` is what the audit log records as the actor."""

    OPERATOR: ClassVar[str] = "operator"
    API_CLIENT: ClassVar[str] = "api_client"
    TERMINAL: ClassVar[str] = "terminal"
    SYSTEM: ClassVar[str] = "system"
    ANONYMOUS: ClassVar[str] = "anonymous"

    kind: str
    name: str = ""
    provider_id: int | None = None
    role: str = ""
    operator: Operator | None = field(default=None, compare=False, repr=False)
    terminal: Terminal | None = field(default=None, compare=False, repr=False)
    credential: Any = field(default=None, compare=False, repr=False)  # e.g. the provider API key

    @property
    def username(self) -> str:  # what operators.audit.record writes as the actor
        return self.name

    @property
    def is_authenticated(self) -> bool:
        return self.kind != self.ANONYMOUS


SYSTEM = Principal(kind=Principal.SYSTEM, name="system")
ANONYMOUS = Principal(kind=Principal.ANONYMOUS)


def principal_of(subject: Any) -> Principal:
    """The principal behind a request, a user, an API client, a terminal (or a Principal)."""
    if isinstance(subject, Principal):
        return subject
    if subject is None:
        return ANONYMOUS
    if isinstance(subject, HttpRequest) or hasattr(subject, "_request"):  # Django or DRF request
        auth = getattr(subject, "auth", None)
        if isinstance(auth, Terminal):
            return principal_of(auth)
        return principal_of(getattr(subject, "user", None))
    if isinstance(subject, Terminal):
        return Principal(
            kind=Principal.TERMINAL,
            name=f"terminal:{subject.credential_prefix or subject.pk}",
            provider_id=subject.provider_id,
            operator=subject.administrator,
            terminal=subject,
        )
    if isinstance(subject, Operator):
        if not subject.is_authenticated or not subject.is_active:
            return ANONYMOUS
        return Principal(
            kind=Principal.OPERATOR,
            name=subject.username,
            provider_id=subject.provider_id,
            role=subject.role,
            operator=subject,
        )
    if getattr(subject, "principal_kind", None) == Principal.API_CLIENT:  # cardap.apikeys
        return Principal(
            kind=Principal.API_CLIENT,
            name=subject.username,
            provider_id=subject.provider_id,
            credential=getattr(subject, "key", None),
        )
    return ANONYMOUS  # AnonymousUser and anything unknown


# --- predicates ----------------------------------------------------------------------------------


def otp_verified(user: Any) -> bool:
    """Signed in and verified by a second factor in this session (django_otp's OTPMiddleware)."""
    check = getattr(user, "is_verified", None)
    return bool(getattr(user, "is_authenticated", False) and check is not None and check())


def has_role(subject: Any, *roles: str) -> bool:
    p = principal_of(subject)
    return p.kind == Principal.OPERATOR and p.role in roles


def is_jlis(subject: Any) -> bool:
    return has_role(subject, R.JLIS_STAFF)


def _system_wide_auditor(p: Principal) -> bool:
    return p.kind == Principal.OPERATOR and p.role == R.AUDITOR and p.provider_id is None


def may_access_provider(subject: Any, provider_id: int | None, *, read: bool = False) -> bool:
    """Tenant restriction: a principal acts within its own provider. J-LIS staff and the system
    reach every provider; an auditor not tied to a provider reads every provider."""
    p = principal_of(subject)
    if p.kind == Principal.SYSTEM or is_jlis(p) or (read and _system_wide_auditor(p)):
        return True
    return p.provider_id is not None and provider_id is not None and p.provider_id == provider_id


def can_manage_provider(subject: Any, provider_id: int | None) -> bool:
    """J-LIS staff manage every provider; a provider admin manages only its own."""
    return is_jlis(subject) or (
        has_role(subject, R.PROVIDER_ADMIN) and may_access_provider(subject, provider_id)
    )


def can_read_audit(subject: Any) -> bool:
    return has_role(subject, *AUDIT_ROLES)


def can_read_roster(subject: Any) -> bool:
    return has_role(subject, *ROSTER_ROLES)


def has_recent_code(request: HttpRequest) -> bool:
    at = request.session.get(REAUTH_AT)
    return at is not None and time.time() - at <= settings.REAUTH_SECONDS


def note_code_entered(request: HttpRequest) -> None:
    """Called by the sign-in and re-authentication steps when a one-time code was verified."""
    request.session[REAUTH_AT] = time.time()


# --- the one audited refusal ---------------------------------------------------------------------


def _refusal(subject: Any, *, reason: str, status: int, detail: dict[str, Any]) -> None:
    request = subject if isinstance(subject, HttpRequest) else getattr(subject, "_request", None)
    p = principal_of(subject)
    target = str(detail.pop("target", "") or (request.path if request is not None else ""))[:200]
    record(
        action="permission.denied",
        request=request,
        actor=p if p.is_authenticated else None,
        provider_id=p.provider_id,
        target=target,
        detail={"reason": reason, "status": status, **{k: str(v)[:200] for k, v in detail.items()}},
    )


def deny(subject: Any, message: str = "", *, reason: str = "forbidden", **detail: Any) -> PermissionDenied:
    """Audit a refusal and return the 403 to raise: `raise deny(request, _("…"), reason="role")`."""
    _refusal(subject, reason=reason, status=403, detail=detail)
    return PermissionDenied(message or _("この画面を利用する権限がありません。"))


def not_found(subject: Any, *, reason: str = "not_found", **detail: Any) -> Http404:
    """Audit a refusal that answers 404: another provider's object, or a forged or unknown id."""
    _refusal(subject, reason=reason, status=404, detail=detail)
    return Http404()


M = TypeVar("M", bound=Model)


def get_or_404(
    subject: Any,
    queryset: QuerySet[M],
    *,
    provider_field: str = "provider_id",
    read: bool = False,
    **lookup: Any,
) -> M:
    """One object of `queryset` that the caller's provider may reach. Missing and another
    provider's object both answer 404 (audited), so nobody learns which ids exist."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise not_found(subject, reason="not_found", lookup=lookup)
    owner = obj
    for part in provider_field.split("__"):
        owner = getattr(owner, part)
    if not may_access_provider(subject, owner, read=read):  # type: ignore[arg-type]
        raise not_found(subject, reason="other_provider", lookup=lookup)
    return obj


def valid_post(request: HttpRequest, form: Any) -> bool:
    """`request.method == "POST" and form.is_valid()`, auditing a forged id on the way."""
    if request.method != "POST":
        return False
    if form.is_valid():
        return True
    refuse_forged_choices(request, form)
    return False


def refuse_forged_choices(request: HttpRequest, form: Any) -> None:
    """A bound form refused an id outside its choices (a forged or another provider's id, since
    pages only offer what the caller may use): audit that refusal like any other."""
    if not form.is_bound or not form.errors:
        return
    forged = sorted(
        name
        for name, errors in form.errors.as_data().items()
        if any(getattr(e, "code", "") in ("invalid_choice", "invalid_pk_value") for e in errors)
    )
    if forged:
        _refusal(request, reason="forged_choice", status=400, detail={"fields": ",".join(forged)})


# --- card APs a provider may load or see (R1.2, R3.4) -------------------------------------------


def _model(name: str) -> Any:
    return apps.get_model("cardap", name)


def shares_in_force(provider_id: int, on: dt.date | None = None) -> QuerySet[Any]:
    """Usage relationships (shared or affiliate) of `provider_id` in force on `on` (today)."""
    on = on or timezone.localdate()
    return _model("CardAPShare").objects.filter(provider_id=provider_id, since__lte=on).filter(
        Q(until__isnull=True) | Q(until__gte=on)
    )


def _provider_row(provider: Any) -> Any:
    """A Provider row from a row or an id (None when there is no such provider)."""
    if provider is None or hasattr(provider, "kind"):
        return provider
    return _model("Provider").objects.filter(pk=provider).first()


def card_aps_loadable_by(provider: Any, on: dt.date | None = None) -> QuerySet[Any]:
    """Approved card APs this provider's terminals may load or delete: its own, and those it
    co-provides through a "shared" relationship in force; affiliates only use an AP, never load
    it. Local-resident area APs only for the municipality that represents them."""
    provider = _provider_row(provider)
    CardAP = _model("CardAP")
    if provider is None:
        return CardAP.objects.none()
    shared = shares_in_force(provider.pk, on).filter(role="shared").values("card_ap_id")
    qs = CardAP.objects.filter(status=CardAP.Status.APPROVED).filter(
        Q(provider_id=provider.pk) | Q(pk__in=shared)
    )
    local = CardAP.Area.LOCAL
    if provider.is_municipality:
        return qs.exclude(~Q(provider_id=provider.pk), area=local)
    return qs.exclude(area=local)


def card_aps_visible_to(provider: Any, on: dt.date | None = None) -> QuerySet[Any]:
    """Card APs a provider (and its business system) may know about: its own, and those it
    shares or is affiliated to while that relationship is in force; approved or retired (cards
    may still carry a retired AP)."""
    provider_id = provider if isinstance(provider, int) else provider.pk
    CardAP = _model("CardAP")
    return CardAP.objects.filter(status__in=[CardAP.Status.APPROVED, CardAP.Status.RETIRED]).filter(
        Q(provider_id=provider_id) | Q(pk__in=shares_in_force(provider_id, on).values("card_ap_id"))
    )


def card_ap_visibility_sql(provider: str, on: dt.date | None = None) -> tuple[str, list[Any]]:
    """card_aps_visible_to and shares_in_force as one plain SQL query over a provider id
    expression ``provider`` (a column of the caller's statement, e.g. the API key's provider,
    so that a caller may read them in the statement it runs anyway; only that expression is
    formatted in, every value is a parameter). Rows (card AP id, NULL) for the visible card APs
    the provider represents, (card AP id, first day of its relationship in force) for the others."""
    on = on or timezone.localdate()
    CardAP, Share = _model("CardAP"), _model("CardAPShare")
    statuses = [CardAP.Status.APPROVED.value, CardAP.Status.RETIRED.value]
    sql = (
        f"SELECT a.id AS card_ap_id, NULL::date AS since FROM {CardAP._meta.db_table} a "  # noqa: S608 (names only)
        f"WHERE a.provider_id = {provider} AND a.status IN (%s, %s) "
        "UNION ALL "
        f"SELECT s.card_ap_id, MIN(s.since) FROM {Share._meta.db_table} s "
        f"JOIN {CardAP._meta.db_table} a ON a.id = s.card_ap_id "
        f"WHERE s.provider_id = {provider} AND s.since <= %s AND (s.until IS NULL OR s.until >= %s) "
        f"AND a.status IN (%s, %s) AND a.provider_id <> {provider} GROUP BY s.card_ap_id"
    )
    return sql, [*statuses, on, on, *statuses]


def card_ap_visibility(provider_id: int, on: dt.date | None = None) -> tuple[list[int], dict[int, dt.date]]:
    """card_aps_visible_to and shares_in_force in one plain SQL statement, for the paths that
    run on every API call (the ORM's compile of those two querysets costs more than running
    them): (the visible card APs the provider represents, {other visible card AP: first day of
    its relationship in force}). tests/test_policy_visibility.py holds it to the querysets."""
    visible, params = card_ap_visibility_sql("pv.id", on)
    sql = f"SELECT v.card_ap_id, v.since FROM (SELECT %s::bigint AS id) pv CROSS JOIN LATERAL ({visible}) v"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [provider_id, *params])
        rows = cursor.fetchall()
    return card_ap_visibility_of(rows)


def card_ap_visibility_of(rows: Any) -> tuple[list[int], dict[int, dt.date]]:
    """card_ap_visibility's answer from card_ap_visibility_sql's rows (card AP id, since)."""
    owned = sorted(ap for ap, since in rows if since is None)
    return owned, {ap: since for ap, since in rows if since is not None}


# --- permitted operations (操作可能範囲, R2.2) -----------------------------------------------------


def check_scope(
    operator: Operator,
    *,
    operation: str,
    terminal: Terminal | None = None,
    card_ap: Any = None,
    request: HttpRequest | None = None,
    audit: bool = True,
) -> OperatorScope:
    """Allow `operation` by `operator` on `terminal` for `card_ap`, or raise (audited) 403.

    Returns the granting scope row. Pass every object the operation involves: a check without a
    terminal or card AP only proves the operation itself is granted."""

    def refuse(message: str, reason: str) -> PermissionDenied:
        if not audit:
            return PermissionDenied(message)
        subject = request or operator
        return deny(subject, message, reason=reason, operation=operation, target=operator.username)

    if operation not in Operation.values:
        raise refuse(_("不明な操作です: %(op)s") % {"op": operation}, "operation")
    if not operator.is_active:
        raise refuse(_("このアカウントは無効です。"), "inactive")
    if operator.role not in OPERATING_ROLES or operator.provider_id is None:
        raise refuse(_("この役割ではカードの操作はできません。"), "role")
    provider = operator.provider
    assert provider is not None  # narrowed by provider_id above
    if not provider.is_live:
        raise refuse(
            _("サービス提供者「%(p)s」は運用中ではないため、カードの操作はできません。") % {"p": provider},
            "provider_not_live",
        )
    label = Operation(operation).label
    scope = OperatorScope.objects.filter(operator=operator, operation=operation).first()
    if scope is None:
        raise refuse(_("「%(op)s」の操作権限がありません。") % {"op": label}, "scope")
    if terminal is not None:
        if terminal.provider_id != operator.provider_id:
            raise refuse(_("他のサービス提供者の端末は使用できません。"), "other_provider")
        if not terminal.is_active:
            raise refuse(_("端末「%(t)s」は無効です。") % {"t": terminal.name}, "terminal_inactive")
        if not scope.all_terminals and not scope.terminals.filter(pk=terminal.pk).exists():
            raise refuse(
                _("端末「%(t)s」で「%(op)s」を行う権限がありません。") % {"t": terminal.name, "op": label},
                "scope",
            )
    if card_ap is not None:
        if not card_aps_loadable_by(provider).filter(pk=card_ap.pk).exists():
            raise refuse(
                _("カードAP「%(ap)s」はこのサービス提供者では扱えません。") % {"ap": card_ap.name},
                "not_loadable",
            )
        if not scope.all_card_aps and not scope.card_aps.filter(pk=card_ap.pk).exists():
            raise refuse(
                _("カードAP「%(ap)s」について「%(op)s」を行う権限がありません。")
                % {"ap": card_ap.name, "op": label},
                "scope",
            )
    return scope


def has_scope(operator: Operator, **kwargs: Any) -> bool:
    """check_scope as a question (for menus): nothing is audited."""
    try:
        check_scope(operator, audit=False, **kwargs)
    except PermissionDenied:
        return False
    return True


# --- guards, one per kind of entry point --------------------------------------------------------


def reauth_redirect(request: HttpRequest) -> HttpResponse:
    messages.info(request, _("重要な操作のため、確認コードをもう一度入力してください。"))
    return redirect(f"{reverse('operators:reauth')}?next={quote(request.get_full_path())}")


def check_request(
    request: HttpRequest, *, roles: tuple[str, ...] = (), provider: bool = True, message: Any = ""
) -> Principal:
    """The request's principal if it holds one of `roles` (any role when empty) and, with
    `provider`, belongs to a provider (J-LIS staff pass `provider` checks); else audited 403."""
    p = principal_of(request)
    refusal = _refusal_reason(p, roles, provider)
    if refusal:
        raise deny(request, str(message), reason=refusal, role=p.role)
    return p


def _refusal_reason(p: Principal, roles: tuple[str, ...], provider: bool) -> str:
    if p.kind != Principal.OPERATOR or (roles and p.role not in roles):
        return "role"
    if provider and p.provider_id is None and not is_jlis(p):
        return "no_provider"
    return ""


def guard(
    *roles: str, provider: bool = True, reauth: bool = False, message: Any = ""
) -> Callable[[View], View]:
    """Function views: a signed-in, verified operator of one of `roles` (middleware has already
    required sign-in and the second factor); `reauth` asks for a recent code; `message` (lazy)
    is what a refused caller reads."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            check_request(request, roles=roles, provider=provider, message=message)
            if reauth and not has_recent_code(request):
                return reauth_redirect(request)
            return view(request, *args, **kwargs)

        wrapped.policy_roles = roles  # type: ignore[attr-defined]  # read by may_open
        wrapped.policy_provider = provider  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def reauth_required(view: View) -> View:
    """Sensitive actions (roles, scopes, credentials) need a code entered within REAUTH_SECONDS."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not has_recent_code(request):
            return reauth_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


class GuardMixin:
    """Class-based views: the same checks as @guard, from class attributes."""

    roles: tuple[str, ...] = ()
    provider: bool = True
    reauth: bool = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        check_request(request, roles=self.roles, provider=self.provider)
        if self.reauth and not has_recent_code(request):
            return reauth_redirect(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def may_open(request: HttpRequest, url_name: str) -> bool:
    """Whether the caller would be let into the page `url_name` (no arguments): the guard the view
    declares, read off the view itself, so menus and home tiles can never offer a page its guard
    refuses, nor hide one it admits. The admin asks its own site; a view without a guard is
    reported rather than guessed."""
    from django.contrib import admin
    from django.urls import resolve

    if url_name.startswith("admin:"):
        return bool(admin.site.has_permission(request))
    func: Any = resolve(reverse(url_name)).func
    view_class = getattr(func, "view_class", None)
    if view_class is not None and issubclass(view_class, GuardMixin):
        roles, provider = view_class.roles, view_class.provider
    elif hasattr(func, "policy_roles"):
        roles, provider = func.policy_roles, func.policy_provider
    else:
        raise LookupError(f"{url_name}: the view declares no guard")
    return not _refusal_reason(principal_of(request), roles, provider)


try:  # DRF is a dependency of the project; kept optional here so the policy imports without it
    from rest_framework.permissions import BasePermission
except ImportError:  # pragma: no cover
    BasePermission = object  # type: ignore[assignment,misc]


class PrincipalPermission(BasePermission):  # type: ignore[misc,valid-type]
    """DRF views: the caller's principal is of one of `kinds` (and, for operators, `roles`).
    A refusal of an authenticated caller is audited; an anonymous one gets DRF's 401."""

    kinds: tuple[str, ...] = (Principal.API_CLIENT,)
    roles: tuple[str, ...] = ()
    message = _("サービス提供者のAPIキーで認証してください。")

    @classmethod
    def of(cls, *kinds: str, roles: tuple[str, ...] = ()) -> type[PrincipalPermission]:
        return type("PrincipalPermission", (cls,), {"kinds": kinds, "roles": roles})

    def has_permission(self, request: Any, view: Any) -> bool:
        p = principal_of(request)
        if not p.is_authenticated:
            return False
        if p.kind in self.kinds and (not self.roles or p.role in self.roles):
            return True
        _refusal(request, reason="kind", status=403, detail={"kind": p.kind})
        return False


def system_task(task: View) -> View:
    """Celery tasks: the body runs as SYSTEM (pass it as the services' actor) and a refusal is
    audited like any other before it propagates."""

    @functools.wraps(task)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except PermissionDenied as exc:
            _refusal(SYSTEM, reason="task", status=403, detail={"task": task.__name__, "message": exc})
            raise

    return wrapped  # type: ignore[return-value]
