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


@register.filter
def grouped_hex(value: Any) -> str:
    """A hex identifier (AID, digest prefix) in groups of two bytes, so it reads like `D392 F102
    7F00 0000`; the groups are spans spaced by CSS, so copying still gives the plain hex, and the
    title holds it whole."""
    from django.utils.html import format_html, format_html_join

    text = str(value or "")
    if not text:
        return "—"
    groups = [(text[i : i + 4],) for i in range(0, len(text), 4)]
    spans = format_html_join("", "<span>{}</span>", groups)
    return format_html('<code class="hex" title="{}">{}</code>', text, spans)


@register.filter
def detail_items(value: Any) -> list[tuple[str, str]]:
    """An audit entry's details as (key, value) pairs to show as a list: nested objects flattened to
    dotted keys (`changes.role`), lists as compact JSON with Japanese readable."""
    if not isinstance(value, dict):
        return [("", as_json(value))] if value not in (None, "", {}) else []
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, item: Any) -> None:
        if isinstance(item, dict) and item:
            for key in sorted(item):
                walk(f"{prefix}.{key}" if prefix else str(key), item[key])
        elif item is None or item == {}:
            pairs.append((prefix, "—"))
        elif isinstance(item, bool):
            pairs.append((prefix, "✓" if item else "—"))
        elif isinstance(item, (dict, list)):
            pairs.append((prefix, as_json(item)))
        else:
            pairs.append((prefix, str(item)))

    walk("", value)
    return pairs


@register.filter
def may_open(request: Any, url_name: str) -> bool:
    """`{% if request|may_open:"operators:audit" %}`: menus and tiles ask the page's own guard."""
    from operators.policy import may_open as admits

    return admits(request, url_name)
