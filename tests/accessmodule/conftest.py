"""A virtual My Number Card in a vpcd reader carrying card APs the service manufactured (registry
approval, AP keys and system-fixed PINs from the key store), and access key packages exported by
the service for them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cardap import services
from cardap.keystore import get_keystore
from cardap.models import CardAP
from cardap_access import open_package
from gpcard import gp
from gpcard.aid import AID, EXTENDED_AREA_SD_AID, custom_module_aid
from gpcard.apdesc import Area, CardAPDescription, FileStructure, parse_load_file
from gpcard.keypackage import KeyPackage
from gpcard.session import CardSession
from tests.pcsc.readers import PcscCard, insert_card, pcscd_service
from tests.registry_helpers import request_fields
from vcard import VirtualCard
from vcard.bureau import DEMO_MASTER_KEYS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "cardap" / "custom_ap" / "template.yaml").read_text()
HOLDER_PIN = "4321"
PASSPHRASE = "correct horse battery staple"
KEY_VERSION = 0x30


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    with pcscd_service():
        yield


@dataclass
class LoadedCard:
    card: VirtualCard
    pc: PcscCard
    aps: dict[str, CardAP]  # "C" library desk, "A" staff gate, "D" type D, "X" custom; "E" not personalised
    user_numbers: dict[str, str] = field(default_factory=dict)
    data: dict[str, dict[int, bytes | list[bytes]]] = field(default_factory=dict)

    @property
    def reader(self) -> str:
        return self.pc.reader


def approve(world, provider, actor, name: str, **fields) -> CardAP:
    ap = services.submit_request(provider=provider, actor=actor, **request_fields(**fields))
    ap = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    CardAP.objects.filter(pk=ap.pk).update(name=name)
    ap.refresh_from_db()
    return ap


def city_aps(world) -> dict[str, CardAP]:
    """The city's card APs: a library desk (type C), a staff gate (type A, holder's PIN), a
    type D (system-fixed PIN, a file larger than one read) and a custom AP from the template."""
    admin = world.city_admin
    return {
        "C": approve(world, world.city, admin, "図書館カード", type="C"),
        "A": approve(world, world.city, admin, "職員ゲート", type="A"),
        "D": approve(world, world.city, admin, "健診記録", type="D", file_size=600),
        "X": approve(
            world, world.city, admin, "独自AP", type="custom", input_format="yaml", input_file=TEMPLATE
        ),
        "E": approve(world, world.city, admin, "搭載途中", type="C"),
    }


def _content(desc: CardAPDescription, user_number: str) -> dict[int, bytes | list[bytes]]:
    """What each file holds: the user number where the description says, a pattern elsewhere."""
    loc = desc.user_number
    out: dict[int, bytes | list[bytes]] = {}
    for f in desc.files:
        if f.structure == FileStructure.TRANSPARENT:
            body = bytearray(bytes((i * 7 + f.fid) & 0xFF for i in range(f.length)))
            if f.fid == loc.fid:
                body[loc.offset : loc.offset + loc.length] = user_number.encode()
            out[f.fid] = bytes(body)
        else:
            records = [
                bytearray(f"REC{n:02d}".encode().ljust(f.record_length, b"\x00")[: f.record_length])
                for n in range(1, f.record_count + 1)
            ]
            if f.fid == loc.fid:
                records[loc.record - 1][loc.offset : loc.offset + loc.length] = user_number.encode()
            out[f.fid] = [bytes(r) for r in records]
    return out


def _dgis(ap: CardAP, desc: CardAPDescription, content: dict[int, bytes | list[bytes]]) -> list[bytes]:
    dgis: list[bytes] = []
    for fid, body in content.items():
        if isinstance(body, bytes):
            dgis += gp.file_content_dgis(fid, 0, body)
        else:
            dgis += [gp.dgi_file_content(fid, n, 0, r) for n, r in enumerate(body, 1)]
    key = services.current_key(ap)
    if key is not None:
        dgis.append(gp.dgi_ap_key(key[1]))
    if desc.pin_policy is not None:
        dgis.append(gp.dgi_pin(services.system_fixed_pin(ap) or HOLDER_PIN))
    return dgis


def load_through_pcsc(pc: PcscCard, aps: dict[str, CardAP], personalise: set[str]) -> LoadedCard:
    store = get_keystore()
    for sd, master in DEMO_MASTER_KEYS.items():
        store.put_master_key(sd, KEY_VERSION, master)
    s = CardSession(pc.transmit)
    s.select(EXTENDED_AREA_SD_AID)
    iin, cin = s.card_identity()
    s.open_secure_channel(store.card_keys(EXTENDED_AREA_SD_AID, KEY_VERSION, iin, cin))
    loaded = LoadedCard(pc.card, pc, aps)
    for kind, ap in aps.items():
        desc = CardAPDescription.decode(bytes.fromhex(ap.description_hex))
        instance = AID.from_hex(ap.aid or "")
        if ap.is_custom:
            _sd, signature, block = parse_load_file(bytes(ap.load_file or b""))
            load_file = AID.from_hex(ap.load_file_aid or "")
            s.load_custom(load_file, block, signature, sd=EXTENDED_AREA_SD_AID)
            s.install_custom(load_file, custom_module_aid(Area.EXTENDED, ap.serial or 0), instance)
        else:
            s.install_standard(desc, instance)
        if kind in personalise:
            number = services.user_number_for(ap)
            content = _content(desc, number)
            s.personalise(instance, _dgis(ap, desc, content))
            loaded.user_numbers[kind] = number
            loaded.data[kind] = content
    return loaded


@pytest.fixture
def loaded_card(world, pcscd) -> Iterator[LoadedCard]:
    """A virtual card in a vpcd reader with the city's card APs on it.

    Stand-in for the real load job: until the relay and card jobs exist, the APs the registry
    manufactured (descriptions, signed custom load file, AP keys and system-fixed PINs from the
    key store) are installed and personalised here with gpcard over PC/SC (pyscard + pcscd +
    vpcd). When the load job lands, replace this body with a job run through the relay: the
    tests only use the returned LoadedCard."""
    pc = insert_card(VirtualCard.create())
    try:
        yield load_through_pcsc(pc, city_aps(world), personalise={"C", "A", "D", "X"})
    finally:
        pc.close()


def export(world, provider, actor, aps, **protection) -> bytes:
    _name, data = services.export_access_key_package(
        provider=provider, actor=actor, card_ap_ids=[ap.pk for ap in aps], **protection
    )
    return data


@pytest.fixture
def city_package(world, loaded_card) -> KeyPackage:
    data = export(world, world.city, world.city_admin, loaded_card.aps.values(), passphrase=PASSPHRASE)
    return open_package(data, passphrase=PASSPHRASE, expected_provider=str(world.city.pk))
