"""Imports run one way (DESIGN.md "Layout"): operators (principal, policy, audit) at the bottom of
the apps, importing no other app; no two apps import each other, directly or round a cycle; the
framework-free packages never import Django (or an app), and the virtual card shares no code with
the host side. Every import statement counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("operators", "cardap", "loading", "revocation")
PROJECT = "config"
FRAMEWORK_FREE = ("gpcard", "vcard", "agent", "accessmodule")
FRAMEWORKS = ("django", "rest_framework", "celery", "django_otp", "drf_spectacular", "kombu")
BOTTOM = "operators"


def imported_roots(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of `package` imports: {top-level name: {module paths}}."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def app_graph(apps: tuple[str, ...] = APPS) -> dict[str, set[str]]:
    graph = {}
    for app in apps:
        roots = imported_roots(app)
        graph[app] = {other for other in apps if other != app and other in roots}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_between_apps():
    graph = app_graph()
    assert find_cycle(graph) is None, graph


def test_the_bottom_layer_imports_no_other_app():
    roots = imported_roots(BOTTOM)
    upward = {app: sorted(roots[app]) for app in (*APPS, PROJECT) if app != BOTTOM and app in roots}
    assert upward == {}, "use a lazy 'app.Model' reference (django.apps.apps.get_model) instead"


def test_apps_do_not_import_the_project():
    """config/ wires the apps together; the apps never reach back into it."""
    offenders = {app: sorted(imported_roots(app).get(PROJECT, ())) for app in APPS}
    assert {app: files for app, files in offenders.items() if files} == {}


@pytest.mark.parametrize("package", FRAMEWORK_FREE)
def test_framework_free_packages_import_no_framework_nor_app(package):
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    roots = imported_roots(package)
    banned = (*FRAMEWORKS, *APPS, PROJECT)
    forbidden = {name: sorted(files) for name, files in roots.items() if name in banned}
    assert forbidden == {}


def test_virtual_card_shares_no_code_with_the_host_side():
    assert "gpcard" not in imported_roots("vcard")
    assert "vcard" not in imported_roots("gpcard")
