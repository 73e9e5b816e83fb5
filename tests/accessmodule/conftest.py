"""A virtual My Number Card in a vpcd reader carrying card APs the service manufactured (registry
approval, AP keys and system-fixed PINs from the key store) and loaded itself through its jobs
over the relay (uvicorn + the real cardap-agent + pcscd/vpcd), and access key packages exported
by the service for them. Run under ``flock /tmp/cardap-pcsc.lock``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cardap import services
from cardap.keystore import get_keystore
from cardap.models import CardAP
from cardap_access import open_package
from gpcard.apdesc import CardAPDescription, FileStructure
from gpcard.keypackage import KeyPackage
from loading import services as services_jobs
from loading.models import Job
from operators.models import Operation, OperatorScope
from tests.loading.jobs_support import open_all_day
from tests.pcsc.readers import PcscCard, card_present, insert_card, wait_for
from tests.registry_helpers import request_fields
from tests.relay import conftest as relay
from tests.relay.conftest import AgentTerminal, make_terminal, wait_presence
from tests.relay.live import POLL_SECONDS, wait_until
from vcard import VirtualCard
from vcard.bureau import DEMO_MASTER_KEYS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "cardap" / "custom_ap" / "template.yaml").read_text()
HOLDER_PIN = "4321"
PASSPHRASE = "correct horse battery staple"
KEY_VERSION = 0x30


# The relay's fixtures: its uvicorn server process (one per session), pcscd, the real agent.
_relay_server_process = relay._relay_server_process
relay_server = relay.relay_server
agent_command = relay.agent_command
pcscd = relay.pcscd
start_agent = relay.start_agent


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


def expected_content(desc: CardAPDescription, user_number: str) -> dict[int, bytes | list[bytes]]:
    """What each file holds after the service's personalisation: the user number where the
    description says (the only content the service writes), the rest as the card created it
    (zeros)."""
    loc = desc.user_number
    out: dict[int, bytes | list[bytes]] = {}
    for f in desc.files:
        if f.structure == FileStructure.TRANSPARENT:
            body = bytearray(f.length)
            if f.fid == loc.fid:
                body[loc.offset : loc.offset + loc.length] = user_number.encode()
            out[f.fid] = bytes(body)
        else:
            records = [bytearray(f.record_length) for _n in range(f.record_count)]
            if f.fid == loc.fid:
                records[loc.record - 1][loc.offset : loc.offset + loc.length] = user_number.encode()
            out[f.fid] = [bytes(r) for r in records]
    return out


# Power is lost during the STORE DATA of the load of "E", counted from the start of that load (its
# read of 9 commands, then SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, INSTALL [for install],
# INSTALL [for personalization]): installed by the service, never personalised.
TEAR_IN_PERSONALISATION = 15


def _run(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return not job.is_active

    wait_until(ended, POLL_SECONDS + 60, f"job {job.pk} to end")
    return job


def load_through_the_service(
    world, at: AgentTerminal, card: VirtualCard, aps: dict[str, CardAP], personalise: set[str]
) -> LoadedCard:
    """The service loads ``aps`` onto the card in the terminal's reader with its own jobs (a read,
    then a load) over the relay; those not in ``personalise`` are torn mid-load, one by one."""
    store = get_keystore()
    for sd, master in DEMO_MASTER_KEYS.items():
        store.put_master_key(sd, KEY_VERSION, master)
    OperatorScope.objects.create(
        operator=world.city_operator, operation=Operation.LOAD, all_terminals=True, all_card_aps=True
    )

    def load(kinds: list[str], key: str, tear_at: int | None = None) -> Job:
        read = _run(
            services_jobs.start_read(
                operator=world.city_operator, terminal=at.terminal, request_key=f"{key}-r"
            )
        )
        assert read.state == Job.State.SUCCEEDED, (read.error_code, read.steps[-3:])
        card.faults.tear_at = tear_at
        holder = CardAP.PinSource.HOLDER
        items = [
            services_jobs.LoadItem(aps[k], pin=HOLDER_PIN if aps[k].pin_source == holder else "")
            for k in kinds
        ]
        return _run(
            services_jobs.start_load(
                operator=world.city_operator,
                terminal=at.terminal,
                read_job=read,
                items=items,
                consent=True,
                resident_confirmed=True,
                request_key=key,
            )
        )

    loaded = LoadedCard(card, None, aps)  # type: ignore[arg-type]
    whole = [k for k in aps if k in personalise]
    job = load(whole, "load")
    assert job.state == Job.State.SUCCEEDED, (job.error_code, job.steps[-3:])
    for kind in whole:
        ap = aps[kind]
        loaded.user_numbers[kind] = job.request["user_numbers"][str(ap.pk)]
        desc = CardAPDescription.decode(bytes.fromhex(ap.description_hex))
        loaded.data[kind] = expected_content(desc, loaded.user_numbers[kind])
    for kind in (k for k in aps if k not in personalise):
        torn = load([kind], f"torn-{kind}", TEAR_IN_PERSONALISATION)
        assert torn.state == Job.State.FAILED and torn.error_code == "card-lost", torn.steps[-2:]
        assert torn.steps[-1]["command"] == "STORE DATA" and torn.steps[-1]["sw"] == ""
    assert card.info()["instances"] == {ap.aid: "0F" if k in personalise else "07" for k, ap in aps.items()}
    return loaded


@pytest.fixture
def loaded_card(world, settings, relay_server, start_agent, pcscd, tmp_path) -> Iterator[LoadedCard]:
    """A virtual card in a vpcd reader with the city's card APs on it, loaded by the service: its
    read and load jobs run in the ASGI server process (uvicorn) and reach the card through the
    real cardap-agent, pyscard, pcscd and vpcd. "E" is torn mid-load (installed, not
    personalised). The agent stops once the card is loaded: the access module has the reader."""
    open_all_day(settings)
    at = make_terminal(world, tmp_path)
    aps = city_aps(world)
    card = VirtualCard.create()
    pc = insert_card(card)
    with contextlib.suppress(Exception):  # the agent owns the card while the service loads it
        pc.connection.disconnect()  # type: ignore[attr-defined]
    try:
        agent = start_agent(at, relay_server.url, pc.reader)
        wait_presence(at.terminal, card_present=True)
        loaded = load_through_the_service(world, at, card, aps, personalise={"C", "A", "D", "X"})
        loaded.pc = pc
        agent.stop()
        # The torn card was pulled from the reader (its vpcd connection closed at the tear, before
        # the agent saw the loss): wait until it is inserted again and pcscd sees it.
        wait_for(pc.client.connected.is_set, 15, "the card back in the reader")
        wait_for(lambda: card_present(pc.reader), 15, "pcscd to see the card again")
        yield loaded
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
