"""ASGI entry point (uvicorn; gunicorn with uvicorn workers in production): the agents' long poll
waits here without holding a thread.

``/relay/`` is served by its own Django handler: the same URL configuration and views, but only
the middleware the relay needs (``RELAY_MIDDLEWARE``: HTTPS redirect and security headers, the
answer's language from ``Accept-Language``), called inline. The relay authenticates every request
by the terminal's credential and takes no session, cookie or CSRF token, so the browser stack
(sessions, CSRF, authentication, OTP, messages, CSP, ...) only cost it CPU — on every one of the
thousands of idle agents' re-polls, and on every step POST."""

import json
import os
from typing import Any

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

# Both are MiddlewareMixin classes whose hooks do no I/O: called inline, not each through a hop to
# the thread pool as the full stack runs them.
RELAY_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
)


class RelayHandler(ASGIHandler):
    """Django's ASGI handler with ``RELAY_MIDDLEWARE`` in place of settings.MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = self._get_response_async  # type: ignore[attr-defined]  # (not in the stubs)

        async def no_response(request: HttpRequest) -> None:  # never called: hooks only
            return None

        middleware = [import_string(path)(no_response) for path in RELAY_MIDDLEWARE]

        async def chain(request: HttpRequest) -> HttpResponseBase:
            response: HttpResponseBase | None = None
            for mw in middleware:
                response = mw.process_request(request)
                if response is not None:
                    break
            if response is None:
                response = await get_response(request)
            for mw in reversed(middleware):
                response = mw.process_response(request, response)
            return response

        self._middleware_chain = convert_exception_to_response(chain)


relay_application = RelayHandler()

# The relay takes small bodies only (a response script is a few KB; its views refuse, and audit,
# anything over 256 KB). Django reads a whole body before the view runs, so one over 1 MB is
# refused here before it is read: by its Content-Length, or once a chunked body passes the limit.
RELAY_PREFIX = "/relay/"
RELAY_MAX_BODY = 1024 * 1024


def _too_large() -> tuple[dict[str, Any], dict[str, Any]]:
    body = json.dumps({"code": "too-large", "message": f"request body over {RELAY_MAX_BODY} bytes"}).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http" or not scope.get("path", "").startswith(RELAY_PREFIX):
        return await django_application(scope, receive, send)
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit() and int(value) > RELAY_MAX_BODY:
            for message in _too_large():
                await send(message)
            return None
    received = 0

    async def limited_receive() -> dict[str, Any]:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > RELAY_MAX_BODY:
                return {"type": "http.disconnect"}  # Django stops reading and abandons the request
        return message

    return await relay_application(scope, limited_receive, send)
