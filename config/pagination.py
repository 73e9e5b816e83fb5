"""Paging of the REST API: limit/offset as documented in the schema (limit 1-1000, offset
0-2147483647). Anything else is a 400 naming the parameter, where DRF would silently fall back
to a default, and a huge number would overflow the database."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_OFFSET = 2**31 - 1


def _bounded(request: Request, name: str, low: int, high: int, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if re.fullmatch(r"[0-9]{1,12}", raw) else -1
    if not low <= value <= high:
        message = _("%(name)s は %(low)d 以上 %(high)d 以下の整数にしてください。")
        raise ValidationError({name: [message % {"name": name, "low": low, "high": high}]})
    return value


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        assert self.max_limit is not None and self.default_limit is not None
        return _bounded(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded(request, self.offset_query_param, 0, MAX_OFFSET, 0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_limit})
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "maximum": MAX_OFFSET})
        return parameters
