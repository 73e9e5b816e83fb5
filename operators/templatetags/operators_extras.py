from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Audit details as compact JSON with Japanese text readable (autoescaped by the template)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def audit_action(code: str) -> str:
    """The readable name of an audit action code (the code itself when it has none)."""
    from operators.audit_labels import action_label

    return action_label(code)
