"""Terminal presence pages for operators (fragment + JSON polled by static/loading/presence.js)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from loading.selectors import terminal_presence
from operators.selectors import terminals_for


@login_required
@never_cache
def terminal_status(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = get_object_or_404(terminals_for(request.user), pk=pk)
    return render(
        request,
        "loading/terminal_status.html",
        {"terminal": terminal, "presence": terminal_presence(terminal)},
    )


@login_required
@never_cache
def terminal_presence_json(request: HttpRequest, pk: int) -> JsonResponse:
    terminal = get_object_or_404(terminals_for(request.user), pk=pk)
    return JsonResponse(terminal_presence(terminal).as_json(), json_dumps_params={"ensure_ascii": False})
