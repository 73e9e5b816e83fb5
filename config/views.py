from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.health import check_broker, check_database


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    db_ok, db_detail = check_database()
    broker_ok, broker_detail = check_broker()
    ok = db_ok and broker_ok
    body = {
        "status": "ok" if ok else "fail",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    return JsonResponse(body, status=200 if ok else 503)


@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask every page's origin for /favicon.ico (the admin and API docs pages too). The
    static URL is resolved per request: the production manifest exists only after collectstatic."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    from operators.audit import record

    record(request=request, action="security.csrf_failure", detail={"path": request.path})
    message = _("フォームの有効期限が切れたか、不正な送信です。ページを再読み込みしてやり直してください。")
    context = {"title": _("送信を受け付けられません"), "message": message}
    return render(request, "error.html", context, status=403)
