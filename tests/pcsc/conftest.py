"""Fixtures for the real PC/SC path: pcscd (started here if not running, stopped only if started
here), a virtual card in a vpcd reader, and a ``terminal`` parametrised in-process vs pyscard so
the same scenarios run both ways. Marker ``pcsc``; skipped only when pcscd/vpcd are not installed
(failing instead under CARDAP_REQUIRE_REAL_SERVICES=1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.pcsc.readers import PcscCard, insert_card, pcscd_service
from vcard import VirtualCard
from vcard.card import CardConfig


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    with pcscd_service():
        yield


@dataclass
class Terminal:
    """One way of reaching a card: ``transmit`` raises vcard.CardUnresponsive when it is torn."""

    card: VirtualCard
    transmit: Callable[[bytes], bytes]
    reset: Callable[[], None]
    kind: str


def _in_process(card: VirtualCard) -> Terminal:
    def reset() -> None:
        card.reset()

    return Terminal(card, card.transmit, reset, "in-process")


@pytest.fixture
def make_terminal(request) -> Iterator[Callable[..., Terminal]]:
    """Factory: ``make_terminal(config)`` -> Terminal for this test's parameter (in-process / pcsc)."""
    kind = getattr(request, "param", "in-process")
    opened: list[PcscCard] = []

    def make(config: CardConfig | None = None) -> Terminal:
        card = VirtualCard.create(config)
        if kind == "in-process":
            return _in_process(card)
        request.getfixturevalue("pcscd")
        pc = insert_card(card)
        opened.append(pc)
        return Terminal(card, pc.transmit, pc.reset, "pcsc")

    yield make
    for pc in opened:
        pc.close()


BOTH_WAYS = pytest.mark.parametrize(
    "make_terminal", ["in-process", pytest.param("pcsc", marks=pytest.mark.pcsc)], indirect=True
)


@pytest.fixture
def vpcd_card(pcscd) -> Iterator[PcscCard]:
    """A fresh virtual card in a vpcd reader (for the independent-tool tests)."""
    pc = insert_card(VirtualCard.create())
    yield pc
    pc.close()
