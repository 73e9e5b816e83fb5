"""ASGI entry point (uvicorn; gunicorn with uvicorn workers in production): the agents' long poll
waits here without holding a thread."""

import json
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

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

    return await django_application(scope, limited_receive, send)
