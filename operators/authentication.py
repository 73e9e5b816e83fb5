"""DRF authentication for the terminal agent: `Authorization: Terminal <token>`.

request.user is the terminal's administrator (the person accountable for the terminal, R2.3);
request.auth is the Terminal, so operators.policy.principal_of(request) is the terminal principal.
Agent views use PrincipalPermission.of(Principal.TERMINAL) and still check the job's operator with
operators.policy.check_scope."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from operators.models import Terminal
from operators.services import authenticate_terminal, touch_terminal

KEYWORD = "Terminal"


class TerminalAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Terminal] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization: Terminal <credential> expected")
        terminal = authenticate_terminal(header[1])
        if terminal is None:
            raise exceptions.AuthenticationFailed("terminal credential invalid, revoked or terminal inactive")
        touch_terminal(terminal)
        return terminal.administrator, terminal

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
