"""Whole card operations as sans-I/O conversations (see :mod:`gpcard.conversation`): the read
every job starts with, and one *change* script that installs, personalises, loads and deletes
card APs under each area SD's secure channel.

Round trips (one batch = one agent round trip):

- :func:`read_card`: 1 trip for a card whose areas are empty, 2 otherwise (3+ only when an area
  holds so many APs that GET STATUS pages). Trip 1, in the clear: the card identity (IIN, CIN),
  each area's resources (GET DATA FF21) and an INITIALIZE UPDATE per area, which tells the host
  the SD's sequence counter and proves the keys (card cryptogram). Trip 2: GET STATUS through each
  non-empty area SD under SCP03 (level 33). The extended area's session is still waiting for its
  EXTERNAL AUTHENTICATE; for the local area the host *predicts* the INITIALIZE UPDATE answer (the
  card challenge is pseudo-random, i = 70: a function of the key, the counter and the SD AID), so
  INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and GET STATUS travel in one script.
  With ``listing=False`` (a change job right after the operator's read): trip 1 only.
- :func:`change_card`: 1 trip for any mix of installs, loads (custom, multi-block) and deletes in
  both areas, opened by predicted INITIALIZE UPDATEs from the read's sequence counters; a further
  trip only to run commands placed after a tolerated status word (a DELETE of a load file that may
  be absent, 6A88).

A change script never raises: its outcome says, per action, how far the card got (``done``,
``refused`` with the status word, ``unknown`` when the card stopped answering in the middle, or
``not-run``), so the caller can record exactly what is known about the card.

This module never imports Django: keys come from a ``keys(sd, iin, cin)`` callable, host
challenges from ``challenge(n)`` (deterministic, so a replayed conversation yields the same
batches).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpcard import gp, plans
from gpcard.aid import AID, AREA_SD_AIDS, ISD_AID, Area
from gpcard.apdesc import CardAPDescription
from gpcard.apdu import CommandAPDU, ResponseAPDU
from gpcard.conversation import Batch, CardLost, ConversationError
from gpcard.kdf import scp03_kdf
from gpcard.scp03 import (
    CARD_CRYPTOGRAM,
    S_MAC,
    InitializeUpdateResponse,
    SCP03Error,
    SCP03Session,
    StaticKeys,
    pseudo_random_card_challenge,
)

__all__ = [
    "AREA_NAMES",
    "Action",
    "AreaContent",
    "CardContent",
    "ReadFailed",
    "change_card",
    "command_name",
    "delete_action",
    "install_custom_action",
    "install_standard_action",
    "personalisation_dgis",
    "read_card",
]

KeysFor = Callable[[AID, bytes, bytes], StaticKeys]
Challenge = Callable[[int], bytes]
Op = Generator[Batch, list[bytes], Any]

AREA_NAMES: dict[str, Area] = {"local": Area.LOCAL, "extended": Area.EXTENDED}
# The order areas are read in: the extended area's session is opened last in trip 1, so trip 2
# can go straight on with its EXTERNAL AUTHENTICATE.
READ_ORDER = ("local", "extended")
SECURITY_LEVEL = 0x33
OK = 0x9000
MORE_DATA = 0x6310
NOT_FOUND = 0x6A88

_INS_NAMES = {
    0xA4: "SELECT",
    0xCA: "GET DATA",
    0xF2: "GET STATUS",
    0xE6: "INSTALL",
    0xE8: "LOAD",
    0xE4: "DELETE",
    0xE2: "STORE DATA",
    0xD8: "PUT KEY",
    0xF0: "SET STATUS",
    0x50: "INITIALIZE UPDATE",
    0x82: "EXTERNAL AUTHENTICATE",
    0xC0: "GET RESPONSE",
}
_INSTALL_KINDS = {
    0x02: "INSTALL [for load]",
    0x0C: "INSTALL [for install]",
    0x20: "INSTALL [for personalization]",
}


def command_name(apdu: bytes) -> str:
    """A command's name from its header (visible in clear also under secure messaging): what a
    job's step log keeps. Never any data."""
    if len(apdu) < 4:
        return "?"
    ins, p1 = apdu[1], apdu[2]
    if ins == 0xE6:
        return _INSTALL_KINDS.get(p1, "INSTALL")
    if ins == 0xE4 and len(apdu) > 3 and apdu[3] == 0x80:
        return "DELETE [load file]"
    return _INS_NAMES.get(ins, f"INS {ins:02X}")


class ReadFailed(ConversationError):
    """The card cannot be read as a My Number Card with two areas; ``code`` is stable."""

    def __init__(self, code: str, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        if sw is not None:
            self.sw = sw


# --- card content -------------------------------------------------------------------------------


@dataclass
class AreaContent:
    area: str
    quota: int
    free: int
    applications: int
    instances: dict[str, int] = field(default_factory=dict)  # instance AID hex -> life cycle
    sequence_counter: int = 0  # the SD's counter after the last INITIALIZE UPDATE of the read
    iu_prefix: str = ""  # hex: key diversification data, key version, SCP, i of its answers

    @property
    def used(self) -> int:
        return self.quota - self.free

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "quota": self.quota,
            "free": self.free,
            "applications": self.applications,
            "instances": dict(self.instances),
            "sequence_counter": self.sequence_counter,
            "iu_prefix": self.iu_prefix,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AreaContent:
        return cls(
            data["area"],
            int(data["quota"]),
            int(data["free"]),
            int(data["applications"]),
            {str(k): int(v) for k, v in data.get("instances", {}).items()},
            int(data.get("sequence_counter", 0)),
            str(data.get("iu_prefix", "")),
        )


@dataclass
class CardContent:
    iin: str  # hex
    cin: str  # hex, upper case: the card identifier the server uses
    areas: dict[str, AreaContent]

    def to_json(self) -> dict[str, Any]:
        return {"iin": self.iin, "cin": self.cin, "areas": {k: v.to_json() for k, v in self.areas.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CardContent:
        return cls(data["iin"], data["cin"], {k: AreaContent.from_json(v) for k, v in data["areas"].items()})


def _sw(raw: bytes) -> int:
    return int.from_bytes(raw[-2:], "big")


def _predicted_initialize_update(
    keys: StaticKeys, sd: AID, area: AreaContent, host_challenge: bytes
) -> bytes:
    """The INITIALIZE UPDATE answer the SD will give at its next sequence counter
    (``area.sequence_counter``), Amendment D §6.2.2.1 (pseudo-random card challenge): lets the
    host send EXTERNAL AUTHENTICATE and the commands after it in the same script."""
    seq = area.sequence_counter.to_bytes(3, "big")
    card_challenge = pseudo_random_card_challenge(keys.enc, seq, bytes(sd))
    context = host_challenge + card_challenge
    s_mac = scp03_kdf(keys.mac, S_MAC, context, keys.key_length * 8)
    cryptogram = scp03_kdf(s_mac, CARD_CRYPTOGRAM, context, 64)
    return bytes.fromhex(area.iu_prefix) + card_challenge + cryptogram + seq


@dataclass
class _Opened:
    """A secure channel opened inside a script by a predicted INITIALIZE UPDATE."""

    scp: SCP03Session
    predicted: bytes
    commands: list[CommandAPDU]  # SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE (wrapped)


def _open_predicted(keys: StaticKeys, sd: AID, area: AreaContent, host_challenge: bytes) -> _Opened:
    scp = SCP03Session(keys, security_level=SECURITY_LEVEL, host_challenge=host_challenge)
    predicted = _predicted_initialize_update(keys, sd, area, host_challenge)
    iu = scp.initialize_update()
    ea = scp.authenticate(predicted)
    return _Opened(scp, predicted, [gp.select(sd), iu, ea])


def _check_opening(opened: _Opened, k: int, raw: bytes, label: str) -> None:
    """Check the answer to command ``k`` (SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE) of a
    predicted opening; raises ReadFailed when the card is not the one predicted."""
    sw = _sw(raw)
    name = ("SELECT", "INITIALIZE UPDATE", "EXTERNAL AUTHENTICATE")[k]
    if sw != OK:
        code = "sd-locked" if sw == 0x6283 else ("wrong-keys" if k == 2 else "card-refused")
        raise ReadFailed(code, f"{label}: {name} SW {sw:04X}", sw)
    if k == 1 and raw[:-2] != opened.predicted:
        probe = SCP03Session(
            opened.scp.keys, security_level=SECURITY_LEVEL, host_challenge=opened.scp.host_challenge
        )
        try:
            probe.authenticate(raw[:-2])
        except SCP03Error:
            raise ReadFailed("card-changed", f"{label}: the card is not the one read before") from None
        # Our keys open it: the same card, but its SD was addressed elsewhere since our read.
        raise ReadFailed("card-used-elsewhere", f"{label}: the card was used since it was read")
    if k == 2:
        opened.scp.unwrap(ResponseAPDU.parse(raw))  # EXTERNAL AUTHENTICATE: no R-MAC


# --- the read -------------------------------------------------------------------------------------


def read_card(
    *, keys: KeysFor, challenge: Challenge, listing: bool = True
) -> Generator[Batch, list[bytes], CardContent]:
    """Identity, both areas' resources and content (see the module docstring for round trips).
    ``listing=False`` stops after trip 1 (identity, resources, sequence counters, keys proved):
    what a change needs when the operator has just read the card's content."""
    sds = {name: AREA_SD_AIDS[AREA_NAMES[name]] for name in READ_ORDER}
    first: list[CommandAPDU] = [gp.select(ISD_AID), gp.get_data(gp.TAG_IIN), gp.get_data(gp.TAG_CIN)]
    for n, name in enumerate(READ_ORDER):
        initialize = CommandAPDU(0x80, 0x50, 0x00, 0x00, challenge(n), le=256)
        first += [gp.select(sds[name]), gp.get_data(gp.TAG_RESOURCES), initialize]
    batch = Batch(tuple(c.encode() for c in first), "read: identity and capacity")
    raw = yield batch
    for i, r in enumerate(raw):
        sw = _sw(r)
        if sw != OK:
            what = command_name(batch.commands[i])
            code = "sd-locked" if sw == 0x6283 else ("not-my-number-card" if i == 0 else "card-refused")
            raise ReadFailed(code, f"read #{i + 1} {what}: SW {sw:04X}", sw)
    if len(raw) < len(batch.commands):
        raise CardLost(f"read: the card answered {len(raw)} of {len(batch.commands)} commands")
    iin = gp.parse_iin(raw[1][:-2])
    cin = gp.parse_cin(raw[2][:-2])
    areas: dict[str, AreaContent] = {}
    sessions: dict[str, SCP03Session] = {}
    area_keys: dict[str, StaticKeys] = {}
    waiting_ea: CommandAPDU | None = None
    for n, name in enumerate(READ_ORDER):
        base = 3 + 3 * n
        res = gp.parse_resources(raw[base + 1][:-2])
        iu = InitializeUpdateResponse.parse(raw[base + 2][:-2])
        if iu.sequence_counter is None or not iu.i & 0x10:
            raise ReadFailed("card-refused", f"{name} area SD does not use a pseudo-random card challenge")
        area_keys[name] = keys(sds[name], iin, cin)
        scp = SCP03Session(area_keys[name], security_level=SECURITY_LEVEL, host_challenge=challenge(n))
        try:
            ea = scp.authenticate(raw[base + 2][:-2])
        except SCP03Error:
            raise ReadFailed(
                "wrong-keys", f"{name} area SD: the card cryptogram does not match our keys"
            ) from None
        sessions[name] = scp
        if name == READ_ORDER[-1]:
            waiting_ea = ea  # the card still waits for it: nothing was selected after this SD
        areas[name] = AreaContent(
            name,
            res.quota,
            res.free_nonvolatile,
            res.applications,
            sequence_counter=int.from_bytes(iu.sequence_counter, "big"),
            iu_prefix=raw[base + 2][:13].hex(),
        )
    # Trip 2: GET STATUS through every non-empty area SD. Further trips only for 6310 pages.
    pending = [name for name in reversed(READ_ORDER) if areas[name].applications > 0 and listing]
    next_challenge = len(READ_ORDER)
    paging = ""  # the area whose open channel holds more GET STATUS pages
    first_trip = True
    while pending:
        commands: list[CommandAPDU] = []
        meta: list[tuple[str, str, _Opened | None, int]] = []  # (what, area, opened, k)
        names = pending if first_trip else pending[:1]
        for name in names:
            if name == paging:
                pass
            elif name == READ_ORDER[-1] and waiting_ea is not None:
                commands.append(waiting_ea)
                meta.append(("ea", name, None, 0))
            else:
                areas[name].sequence_counter += 1
                fresh = _open_predicted(area_keys[name], sds[name], areas[name], challenge(next_challenge))
                next_challenge += 1
                sessions[name] = fresh.scp
                for k, c in enumerate(fresh.commands):
                    commands.append(c)
                    meta.append(("open", name, fresh, k))
            commands.append(
                sessions[name].wrap(gp.get_status(gp.StatusKind.APPLICATIONS, next_part=name == paging))
            )
            meta.append(("gs", name, None, 0))
        waiting_ea = None
        first_trip = False
        batch = Batch(tuple(c.encode() for c in commands), "read: card content")
        raw = yield batch
        paging = ""
        for pos, r in enumerate(raw):
            what, name, opened, k = meta[pos]
            sw = _sw(r)
            if what == "open":
                assert opened is not None
                _check_opening(opened, k, r, "read")
                continue
            if what == "ea":
                if sw != OK:
                    raise ReadFailed("wrong-keys", f"read {name}: EXTERNAL AUTHENTICATE SW {sw:04X}", sw)
                sessions[name].unwrap(ResponseAPDU.parse(r))
                continue
            resp = sessions[name].unwrap(ResponseAPDU.parse(r))
            if resp.sw not in (OK, MORE_DATA, NOT_FOUND):
                raise ReadFailed("card-refused", f"read {name}: GET STATUS SW {resp.sw:04X}", resp.sw)
            if resp.sw != NOT_FOUND:
                for entry in gp.parse_get_status(resp.data):
                    areas[name].instances[entry.aid.hex()] = entry.life_cycle
            if resp.sw == MORE_DATA:
                pending.remove(name)
                pending.insert(0, name)  # next trip: this area first, alone
                if pos == len(commands) - 1:
                    paging = name  # its channel stays open: fetch the next page
                else:
                    areas[name].instances.clear()  # another SELECT followed: list it again
                continue
            pending.remove(name)
        if len(raw) < len(commands):
            raise CardLost(f"read: the card answered {len(raw)} of {len(commands)} commands")
    return CardContent(iin.hex().upper(), cin.hex().upper(), areas)


# --- changes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One change to one card AP: plain commands for one area SD. ``ref`` is the caller's
    reference (e.g. an installation id). ``tolerate`` lists status words of the *last* command
    that count as done (a load file that is already gone answers 6A88)."""

    ref: str
    area: str
    kind: str  # "install" | "delete"
    instance: str  # instance AID hex
    commands: tuple[CommandAPDU, ...]
    tolerate: tuple[int, ...] = ()
    installed_after: int = 0  # commands after which the instance exists (07)


def personalisation_dgis(
    description: CardAPDescription, user_number: str, *, pin: str | None, ap_key: bytes | None
) -> list[bytes]:
    """DGIs personalising a card AP: the user number at its declared place (ASCII), the AP key and
    the PIN where the description needs them."""
    loc = description.user_number
    value = user_number.encode("ascii")
    if len(value) > loc.length:
        raise ValueError(f"user number of {len(value)} characters; the AP holds {loc.length}")
    out = [gp.dgi_file_content(loc.fid, loc.record, loc.offset, value)]
    if ap_key is not None:
        out.append(gp.dgi_ap_key(ap_key))
    if description.needs_pin:
        if not pin:
            raise ValueError("this card AP needs a PIN")
        out.append(gp.dgi_pin(pin))
    return out


def install_standard_action(
    *, ref: str, area: str, instance: str, description: CardAPDescription, dgis: Iterable[bytes]
) -> Action:
    cmds = plans.install_standard_ap(description, AID.from_hex(instance), list(dgis))
    return Action(ref, area, "install", instance.upper(), tuple(cmds), installed_after=1)


def install_custom_action(
    *,
    ref: str,
    area: str,
    instance: str,
    load_file: str,
    module: str,
    data_block: bytes,
    signature: bytes,
    dgis: Iterable[bytes],
) -> Action:
    sd = AREA_SD_AIDS[AREA_NAMES[area]]
    cmds = plans.install_custom_ap(
        load_file=AID.from_hex(load_file),
        module=AID.from_hex(module),
        instance=AID.from_hex(instance),
        sd=sd,
        data_block=data_block,
        signature=signature,
        dgis=list(dgis),
    )
    load_cmds = len(
        plans.load_custom_ap(
            load_file=AID.from_hex(load_file), sd=sd, data_block=data_block, signature=signature
        )
    )
    return Action(ref, area, "install", instance.upper(), tuple(cmds), installed_after=load_cmds + 1)


def delete_action(
    *, ref: str, area: str, instance: str, load_file: str | None = None, may_be_absent: bool = False
) -> Action:
    """DELETE an instance; a custom AP's load file goes with its instances in one atomic DELETE
    (P2 80), so tearing never leaves the instance without its load file or the other way round."""
    target = AID.from_hex(load_file or instance)
    cmd = gp.delete(target, related=bool(load_file))
    return Action(
        ref, area, "delete", instance.upper(), (cmd,), tolerate=(NOT_FOUND,) if may_be_absent else ()
    )


def change_card(
    *,
    content: CardContent,
    actions: Sequence[Action],
    keys: KeysFor,
    challenge: Challenge,
    label: str = "change",
) -> Op:
    """Run ``actions`` on the card read as ``content`` (the same card, its sequence counters).
    Returns ``{"actions": [{"ref", "kind", "result", "acknowledged", "sw"}], "error": code or ""}``
    (result: done / partial / refused / unknown / not-run)."""
    iin, cin = bytes.fromhex(content.iin), bytes.fromhex(content.cin)
    results: dict[str, dict[str, Any]] = {
        a.ref: {"ref": a.ref, "kind": a.kind, "result": "not-run", "acknowledged": 0, "sw": ""}
        for a in actions
    }
    # Group by area (one opening each); tolerant actions last in their area.
    ordered: list[Action] = []
    for name in READ_ORDER:
        ordered += [a for a in actions if a.area == name and not a.tolerate]
        ordered += [a for a in actions if a.area == name and a.tolerate]
    steps = [(a, i, c) for a in ordered for i, c in enumerate(a.commands)]
    areas = {name: AreaContent.from_json(area.to_json()) for name, area in content.areas.items()}
    n_challenge = 64
    error = ""
    pos = 0
    scp: SCP03Session | None = None
    open_area = ""
    while pos < len(steps) and not error:
        commands: list[CommandAPDU] = []
        meta: list[tuple[str, Any, int, SCP03Session]] = []  # ("open", opened, k) | ("step", j)
        counters_before = {name: a.sequence_counter for name, a in areas.items()}
        batch_scp, batch_area = scp, open_area
        for j in range(pos, len(steps)):
            action, _i, cmd = steps[j]
            if batch_scp is None or action.area != batch_area:
                sd = AREA_SD_AIDS[AREA_NAMES[action.area]]
                areas[action.area].sequence_counter += 1
                opened = _open_predicted(keys(sd, iin, cin), sd, areas[action.area], challenge(n_challenge))
                n_challenge += 1
                for k, c in enumerate(opened.commands):
                    commands.append(c)
                    meta.append(("open", opened, k, opened.scp))
                batch_scp, batch_area = opened.scp, action.area
            commands.append(batch_scp.wrap(cmd))
            meta.append(("step", None, j, batch_scp))
        batch = Batch(tuple(c.encode() for c in commands), label)
        raw = yield batch
        resume: int | None = None
        for p, r in enumerate(raw):
            what, opened, k, session = meta[p]
            if what == "open":
                if k == 1:  # the card took this INITIALIZE UPDATE: its counter moved
                    counters_before[batch_area_of(meta, p, steps)] = areas[
                        batch_area_of(meta, p, steps)
                    ].sequence_counter
                try:
                    _check_opening(opened, k, r, label)
                except ReadFailed as exc:
                    error = exc.code
                    break
                scp, open_area = session, batch_area_of(meta, p, steps)
                continue
            action, i, _cmd = steps[k]
            result = results[action.ref]
            try:
                resp = session.unwrap(ResponseAPDU.parse(r))
            except SCP03Error:
                result["result"], error = "unknown", "secure-channel"
                break
            result["sw"] = f"{resp.sw:04X}"
            last = i == len(action.commands) - 1
            if resp.sw == OK or (last and resp.sw in action.tolerate):
                result["acknowledged"] = i + 1
                result["result"] = "done" if last else "partial"
                if resp.sw != OK:  # a tolerated stop: the agent went no further
                    resume = k + 1
                    break
            else:
                result["result"], error = "refused", "card-refused"
                break
        for _what, _o, _k, session in meta:
            session.discard_pending()
        for name, value in counters_before.items():
            areas[name].sequence_counter = value  # only openings the card received count
        if error:
            break
        if resume is not None:
            pos = resume
            continue
        if len(raw) < len(commands):
            # The card stopped answering (pulled out, power lost): the command without an answer
            # may or may not have been applied; the next read settles it.
            what, _o, k, _s = meta[len(raw)]
            if what == "step":
                results[steps[k][0].ref]["result"] = "unknown"
            error = "card-lost"
            break
        pos = len(steps)
    return {"actions": [results[a.ref] for a in actions], "error": error}


def batch_area_of(
    meta: Sequence[tuple[str, Any, int, SCP03Session]],
    p: int,
    steps: Sequence[tuple[Action, int, CommandAPDU]],
) -> str:
    """The area of the opening at ``meta[p]``: that of the first step after it."""
    for what, _o, k, _s in meta[p:]:
        if what == "step":
            return steps[k][0].area
    raise ConversationError("an opening without commands")
