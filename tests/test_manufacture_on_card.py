"""The manufactured card APs are accepted by the virtual My Number Card: a custom AP's signed
load file loads (hash and DAP signature checked by the card) and installs; a standard AP installs
with its description. The card, not our own code, is the judge here."""

from pathlib import Path

import pytest

from cardap import services
from gpcard import apdesc
from gpcard.aid import AID, EXTENDED_AREA_SD_AID, LOCAL_AREA_SD_AID, custom_module_aid
from gpcard.scp03 import StaticKeys
from gpcard.session import CardSession
from gpcard.sw import CardError
from tests.registry_helpers import request_fields
from vcard.card import CardConfig, VirtualCard

TEMPLATE = (Path(__file__).resolve().parent.parent / "cardap" / "custom_ap" / "template.yaml").read_text()
KEY = bytes.fromhex("404142434445464748494A4B4C4D4E4F")


def session(sd):
    card = VirtualCard.create(CardConfig(static_key=KEY))
    s = CardSession(card.transmit)
    s.select(sd)
    s.open_secure_channel(StaticKeys.single(KEY))
    return s


@pytest.mark.django_db
def test_custom_ap_loads_and_installs_on_the_virtual_card(world):
    ap = services.submit_request(
        provider=world.shop,
        actor=world.shop_admin,
        **request_fields(type="custom", input_format="yaml", input_file=TEMPLATE),
    )
    ap = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    _sd, signature, block = apdesc.parse_load_file(bytes(ap.load_file))
    s = session(EXTENDED_AREA_SD_AID)
    before = s.free_memory()
    load_file = AID.from_hex(ap.load_file_aid)
    s.load_custom(load_file, block, signature, sd=EXTENDED_AREA_SD_AID)
    s.install_custom(load_file, custom_module_aid(apdesc.Area.EXTENDED, ap.serial), AID.from_hex(ap.aid))
    assert AID.from_hex(ap.aid) in [e.aid for e in s.list_content()]
    # load file plus instance: exactly the size the registry recorded
    assert before.free_nonvolatile - s.free_memory().free_nonvolatile == ap.memory_cost


@pytest.mark.django_db
def test_tampered_load_file_is_refused_by_the_card(world):
    ap = services.submit_request(
        provider=world.shop,
        actor=world.shop_admin,
        **request_fields(type="custom", input_format="yaml", input_file=TEMPLATE),
    )
    ap = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    _sd, signature, block = apdesc.parse_load_file(bytes(ap.load_file))
    forged = bytes(signature[:-1]) + bytes([signature[-1] ^ 1])
    s = session(EXTENDED_AREA_SD_AID)
    with pytest.raises(CardError):
        s.load_custom(AID.from_hex(ap.load_file_aid), block, forged, sd=EXTENDED_AREA_SD_AID)


@pytest.mark.django_db
@pytest.mark.parametrize("ap_type", ["A", "C", "D"])
def test_standard_ap_installs_on_the_virtual_card(world, ap_type):
    ap = services.submit_request(
        provider=world.city, actor=world.city_admin, **request_fields(type=ap_type, area="local")
    )
    ap = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    s = session(LOCAL_AREA_SD_AID)
    before = s.free_memory()
    s.install_standard(
        apdesc.CardAPDescription.decode(bytes.fromhex(ap.description_hex)), AID.from_hex(ap.aid)
    )
    after = s.free_memory()
    assert AID.from_hex(ap.aid) in [e.aid for e in s.list_content()]
    # the card charges exactly the size the registry recorded
    assert before.free_nonvolatile - after.free_nonvolatile == ap.memory_cost
