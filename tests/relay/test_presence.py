"""Terminal presence as operators see it: the selector, the page with its live fragment and the
JSON the page's script polls; another provider's terminal is not found."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from loading.models import TerminalPresence
from loading.relay_services import AgentState, report_presence
from loading.selectors import terminal_presence
from operators.models import Terminal


@pytest.fixture
def terminal(world) -> Terminal:
    return Terminal.objects.create(
        provider=world.city, name="窓口1", location="1階", administrator=world.city_admin
    )


def _report(terminal: Terminal, session: str = "s" * 32, **kw) -> bool:
    state = AgentState(session=session, agent="cardap-agent/0.1.0", reader="Virtual PCD 00 00", **kw)
    return report_presence(terminal=terminal, state=state, address="192.0.2.7")


@pytest.mark.django_db
def test_selector_online_offline_never(terminal):
    assert terminal_presence(terminal).state == "never"
    _report(terminal, card_present=True, atr="3BE000FF8131FE4514")
    p = terminal_presence(terminal)
    assert (p.state, p.card_present, p.atr, p.reader) == (
        "online",
        True,
        "3BE000FF8131FE4514",
        "Virtual PCD 00 00",
    )
    later = timezone.now() + dt.timedelta(minutes=5)
    gone = terminal_presence(terminal, now=later)
    assert gone.state == "offline" and not gone.card_present and gone.atr == ""
    terminal.refresh_from_db()
    assert terminal.last_seen_at is not None


@pytest.mark.django_db
def test_take_over_and_the_superseded_session(terminal):
    assert _report(terminal, session="a" * 32)
    assert _report(terminal, session="b" * 32)
    assert not _report(terminal, session="a" * 32)  # the first agent does not take it back
    assert TerminalPresence.objects.get(terminal=terminal).agent_session == "b" * 32


@pytest.mark.django_db
def test_the_same_agent_polling_again_costs_two_updates(terminal, django_assert_num_queries):
    """Every poll reports; the same session again is one UPDATE of its presence and one of the
    terminal's last sighting (no row lock and read-then-write), and what it reports is kept."""
    assert _report(terminal)
    before = TerminalPresence.objects.get(terminal=terminal)
    with django_assert_num_queries(2):
        assert _report(terminal, card_present=True, atr="3BE000FF8131FE4514")
    after = TerminalPresence.objects.get(terminal=terminal)
    assert (after.card_present, after.atr, after.connected_at) == (
        True,
        "3BE000FF8131FE4514",
        before.connected_at,
    )
    assert after.last_poll_at > before.last_poll_at
    # A new session still takes the terminal over; the old one is then refused.
    assert _report(terminal, session="n" * 32)
    assert not _report(terminal)


@pytest.mark.django_db
def test_page_and_json_for_the_provider_and_404_for_another(terminal, world, login):
    _report(terminal, card_present=True, atr="3BE000FF8131FE4514")
    client = login(world.city_operator)
    page = client.get(f"/loading/terminals/{terminal.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "接続中" in html and "カードあり" in html and "loading/presence.js" in html
    assert f'data-presence-url="/loading/terminals/{terminal.pk}/presence.json"' in html
    data = client.get(f"/loading/terminals/{terminal.pk}/presence.json").json()
    assert data["state"] == "online" and data["card_present"] and data["atr"] == "3BE000FF8131FE4514"
    assert data["state_label"] == "接続中"
    other = login(world.shop_admin)
    assert other.get(f"/loading/terminals/{terminal.pk}/").status_code == 404
    assert other.get(f"/loading/terminals/{terminal.pk}/presence.json").status_code == 404
    assert login(world.jlis).get(f"/loading/terminals/{terminal.pk}/presence.json").status_code == 200


@pytest.mark.django_db
def test_json_in_english(terminal, world, login):
    client = login(world.city_operator)
    with translation.override("ja"):  # the request activates English; do not leak it to other tests
        data = client.get(f"/loading/terminals/{terminal.pk}/presence.json", HTTP_ACCEPT_LANGUAGE="en").json()
    assert data["state"] == "never" and data["state_label"] == "Never connected"
