"""Menus and home tiles are the pages' own guards: every link a role is offered opens for it, and
every page of the menu it is not offered refuses it. Nothing in the templates decides by role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import signed_in

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
MENU_TEMPLATES = ("templates/base.html", "templates/home.html", "templates/operators/terminal_list.html")
ROLES = ("jlis", "city_admin", "city_operator", "auditor", "city_terminal_admin", "city_auditor")


def _menu_url_names() -> list[str]:
    names: set[str] = set()
    for path in MENU_TEMPLATES:
        names |= set(re.findall(r'request\|may_open:"([\w:-]+)"', (ROOT / path).read_text()))
    assert len(names) >= 10, names  # the menus really are built this way
    return sorted(names)


def _offered(html: str) -> set[str]:
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S)
    tiles = re.search(r'<div class="tiles">.*?</div>', html, re.S)
    assert nav and tiles
    return set(re.findall(r'href="([^"]+)"', nav.group(0) + tiles.group(0)))


def test_templates_decide_nothing_by_role():
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"user\.role\s*(==|!=)", text), path


@pytest.mark.parametrize("who", ROLES)
def test_each_offered_page_opens_and_each_withheld_page_refuses(world, who):
    client = signed_in(getattr(world, who))
    home = client.get("/")
    assert home.status_code == 200
    offered = _offered(home.content.decode())
    for name in _menu_url_names():
        url = reverse(name)
        status = client.get(url).status_code
        if url in offered:
            assert status in (200, 302), (who, name, status)  # 302: the admin's index redirect, reauth
        elif name != "operators:terminal_create":  # offered on the terminal list, not in menus
            assert status in (403, 404), (who, name, status)


def test_roles_see_different_menus(world):
    """The filter is not constant: J-LIS staff get the admin, operators the card operations."""
    jlis = _offered(signed_in(world.jlis).get("/").content.decode())
    operator = _offered(signed_in(world.city_operator).get("/").content.decode())
    assert reverse("admin:index") in jlis and reverse("admin:index") not in operator
    assert reverse("jobs:terminals") in operator and reverse("jobs:terminals") not in jlis
    assert reverse("operators:audit") in jlis and reverse("operators:audit") not in operator
