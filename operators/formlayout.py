"""One layout for every form of the service (templates/_form_fields.html): fields grouped under a
legend, and fields or whole groups shown only while another field has given values (the page's
static/js/app.js hides what does not apply; the server still validates everything)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms


@dataclass
class Group:
    legend: Any
    show_when: str = ""  # "type=A,C,D" (see static/js/app.js)
    fields: list[tuple[forms.BoundField, str]] = field(default_factory=list)


class GroupedForm:
    """Mixin for a Django form: `groups` lists (legend, field names[, show_when]); `show_when` maps
    a field name to its condition. Fields not listed follow in a group without a legend."""

    groups: ClassVar[list[tuple[Any, ...]]] = []
    show_when: ClassVar[dict[str, str]] = {}

    def grouped(self) -> list[Group]:
        form: Any = self
        placed: set[str] = set()
        result: list[Group] = []
        for legend, names, *when in self.groups:
            group = Group(legend, when[0] if when else "")
            for name in names:
                if name in form.fields:
                    group.fields.append((form[name], self.show_when.get(name, "")))
                    placed.add(name)
            if group.fields:
                result.append(group)
        rest = Group(None)
        rest.fields = [(form[n], self.show_when.get(n, "")) for n in form.fields if n not in placed]
        if rest.fields:
            result.append(rest)
        return result
