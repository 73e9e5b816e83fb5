"""Card fault diagnosis (R5): a probe that checks the card step by step *without changing it*, and
a pure classifier that turns the probe's result, or a failed job's step log, into a fault class.

The probe is a sans-I/O conversation (:mod:`gpcard.conversation`): it yields batches and receives
the R-APDUs, so it runs in-process, through the relay, or anywhere a ``transmit`` exists. It
stops at the first step that fails; the steps after it are reported as not reached. What it
sends: SELECT (card manager, area SDs, the provider's card APs), GET DATA (IIN, CIN, FF21),
INITIALIZE UPDATE / EXTERNAL AUTHENTICATE, GET STATUS and VERIFY *without data* (ISO/IEC 7816-4:
asks for the retry counter, presents nothing). None of these changes the card's content, life
cycles, keys or PIN counters; opening a secure channel advances the SD's SCP03 sequence counter,
as every secure channel does. It never selects or addresses a standard AP: it only reads their
presence in the card manager's GET STATUS.

The classifier is pure: it needs no card, no database and no framework. Stable class codes are
:class:`FaultClass` values; the Django side attaches the advice.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gpcard import gp
from gpcard.aid import (
    AID,
    AREA_SD_AIDS,
    INSTANCE_PREFIX,
    ISD_AID,
    STANDARD_AP_AIDS,
    Area,
)
from gpcard.apdu import CommandAPDU, ResponseAPDU
from gpcard.conversation import Batch, agent_continues
from gpcard.scp03 import SCP03Error, SCP03Session, StaticKeys

__all__ = [
    "MY_NUMBER_CARD_ATRS",
    "ApLookup",
    "FaultClass",
    "KeyLookup",
    "Presence",
    "ProbePlan",
    "ProbeResult",
    "StepResult",
    "classify",
    "classify_job_log",
    "presence_result",
    "probe",
]

# OpenSC's JPKI driver (src/libopensc/card-jpki.c) recognises the My Number Card by this ATR.
MY_NUMBER_CARD_ATRS: tuple[bytes, ...] = (bytes.fromhex("3BE000FF8131FE4514"),)

# (SD AID, card IIN, card CIN) -> the card's SCP03 keys for that SD; raises LookupError (e.g. the
# key store's KeyNotFoundError) when the service holds no key for it.
KeyLookup = Callable[[AID, bytes, bytes], StaticKeys]

VERIFY_STATUS = CommandAPDU(0x00, 0x20, 0x00, 0x80)  # no data: the retry counter, nothing presented
SW_LOCKED = 0x6283
SW_PIN_BLOCKED = 0x6983
SW_NOT_PERSONALISED = 0x6985
SW_NOT_FOUND = 0x6A82
SW_NO_PIN = 0x6A88
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_SECURITY = 0x6982
MAX_STATUS_PAGES = 32


class FaultClass(enum.StrEnum):
    """What went wrong, in the terms the operator acts on."""

    NO_READER = "no-reader"
    NO_CARD = "no-card"
    NOT_MY_NUMBER_CARD = "not-my-number-card"
    CARD_LOCKED = "card-locked"  # card locked or terminated
    AREA_LOCKED = "area-locked"  # an area SD (or a card AP in it) is locked
    KEYS_REJECTED = "keys-rejected"  # wrong or unknown card
    AREA_FULL = "area-full"
    AP_HALF_INSTALLED = "ap-half-installed"  # installed, not personalised
    AP_MISSING = "ap-missing"  # missing, or on the card but unknown to the service
    PIN_BLOCKED = "pin-blocked"
    COMMUNICATION_LOST = "communication-lost"  # card pulled, power lost mid-command (tearing)
    SERVER_REFUSED = "server-refused"  # scope, hours, maintenance, consent, area rule
    NO_FAULT = "no-fault"
    UNCLASSIFIED = "unclassified"


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """What the terminal agent reported with its last poll. ``None`` = not reported."""

    reader: bool | None = None
    card: bool | None = None
    atr: bytes | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Presence:
        if not d:
            return cls()
        atr = d.get("atr")
        return cls(d.get("reader"), d.get("card"), bytes.fromhex(atr) if atr else None)

    def to_dict(self) -> dict[str, Any]:
        return {"reader": self.reader, "card": self.card, "atr": self.atr.hex().upper() if self.atr else None}


@dataclass(frozen=True)
class ProbePlan:
    """What to check: the areas, the card APs the service believes are on this card
    (``expected``), every card AP instance this provider has (``known``: one on the card that is
    known but not expected is "unknown to the service"), and the free memory each area needs."""

    presence: Presence = field(default_factory=Presence)
    areas: tuple[Area, ...] = (Area.LOCAL, Area.EXTENDED)
    expected: tuple[AID, ...] = ()
    known: tuple[AID, ...] = ()
    need_free: Mapping[Area, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for aid in (*self.expected, *self.known):
            if aid in STANDARD_AP_AIDS or not bytes(aid).startswith(INSTANCE_PREFIX):
                raise ValueError(f"{aid} is not a card AP instance: the probe addresses no other AP")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ProbePlan:
        return cls(
            presence=Presence.from_dict(params.get("presence")),
            areas=tuple(Area[a.upper()] for a in params.get("areas", ("local", "extended"))),
            expected=tuple(AID.from_hex(a) for a in params.get("expected", ())),
            known=tuple(AID.from_hex(a) for a in params.get("known", ())),
            need_free={Area[k.upper()]: int(v) for k, v in params.get("need_free", {}).items()},
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "presence": self.presence.to_dict(),
            "areas": [a.name.lower() for a in self.areas],
            "expected": [a.hex() for a in self.expected],
            "known": [a.hex() for a in self.known],
            "need_free": {a.name.lower(): n for a, n in self.need_free.items()},
        }

    def step_names(self) -> list[str]:
        names = ["reader", "card", "atr", "card_manager", "life_cycle"]
        names += [f"area_sd:{a.name.lower()}" for a in self.areas]
        for a in self.areas:
            names += [f"scp03:{a.name.lower()}", f"memory:{a.name.lower()}"]
        names.append("content")
        names += [f"ap:{aid.hex()}" for aid in self.expected]
        return names


# --- the result ----------------------------------------------------------------------------------

PASSED, FAILED, NOT_REACHED, NOT_REPORTED = "passed", "failed", "not_reached", "not_reported"


@dataclass
class StepResult:
    """One checklist line. ``finding`` is a stable code for a failure; ``command``/``sw`` the card
    command and status word behind it (names and numbers only, never data)."""

    step: str
    status: str = NOT_REACHED
    finding: str = ""
    command: str = ""
    sw: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.step.partition(":")[0]

    @property
    def subject(self) -> str:
        return self.step.partition(":")[2]


@dataclass
class ProbeResult:
    steps: list[StepResult]
    facts: dict[str, Any] = field(default_factory=dict)  # IIN, CIN, free memory, listing (AIDs)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == FAILED), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [{k: v for k, v in vars(s).items() if v or k in ("step", "status")} for s in self.steps],
            "facts": self.facts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProbeResult:
        return cls([StepResult(**s) for s in d.get("steps", [])], dict(d.get("facts", {})))


class _Stop(Exception):  # noqa: N818 - internal control flow: the probe stops at this step
    pass


class _Recorder:
    def __init__(self, plan: ProbePlan) -> None:
        self.result = ProbeResult([StepResult(name) for name in plan.step_names()])
        self._by_name = {s.step: s for s in self.result.steps}

    def replan(self, plan: ProbePlan) -> None:
        """The plan changed before any of its card AP steps ran: list the new card AP steps."""
        kept = [s for s in self.result.steps if s.kind != "ap"]
        self.result.steps = kept + [StepResult(f"ap:{aid.hex()}") for aid in plan.expected]
        self._by_name = {s.step: s for s in self.result.steps}

    def passed(self, step: str, **detail: Any) -> None:
        s = self._by_name[step]
        s.status, s.detail = PASSED, detail

    def not_reported(self, step: str) -> None:
        self._by_name[step].status = NOT_REPORTED

    def fail(
        self, step: str, finding: str, *, command: str = "", sw: int | None = None, **detail: Any
    ) -> _Stop:
        s = self._by_name[step]
        s.status, s.finding, s.command, s.detail = FAILED, finding, command, detail
        s.sw = f"{sw:04X}" if sw is not None else ""
        return _Stop(step)


def presence_result(plan: ProbePlan) -> ProbeResult | None:
    """The result when the agent's report alone already fails (no reader, no card, a card that is
    not a My Number Card): no card conversation is needed. None when the card should be probed."""
    rec = _Recorder(plan)
    try:
        _check_presence(plan.presence, rec)
    except _Stop:
        return rec.result
    return None


def _check_presence(p: Presence, rec: _Recorder) -> None:
    for step, value, finding in (("reader", p.reader, "no-reader"), ("card", p.card, "no-card")):
        if value is None:
            rec.not_reported(step)
        elif not value:
            raise rec.fail(step, finding)
        else:
            rec.passed(step)
    if p.atr is None:
        rec.not_reported("atr")
    elif p.atr not in MY_NUMBER_CARD_ATRS:
        raise rec.fail("atr", "atr-not-my-number-card", atr=p.atr.hex().upper())
    else:
        rec.passed("atr", atr=p.atr.hex().upper())


# --- the probe -----------------------------------------------------------------------------------

Probe = Generator[Batch, list[bytes], dict[str, Any]]


def _exchange(
    rec: _Recorder,
    step: str,
    commands: Sequence[CommandAPDU | bytes],
    label: str,
    names: Sequence[str],
    steps: Sequence[str] = (),
) -> Generator[Batch, list[bytes], list[ResponseAPDU]]:
    """Send one batch; the card stopping mid-batch (fewer answers, the last not a stop) fails
    the step of the unanswered command (``steps[i]``, else ``step``) as communication lost."""
    raw_commands = tuple(c.encode() if isinstance(c, CommandAPDU) else c for c in commands)
    raw = yield Batch(raw_commands, label)
    responses = [ResponseAPDU.parse(r) for r in raw]
    if len(responses) < len(raw_commands) and (not responses or agent_continues(responses[-1].sw)):
        lost_at = names[len(responses)]
        step = steps[len(responses)] if steps else step
        raise rec.fail(step, "card-lost", command=lost_at, answered=len(responses), sent=len(raw_commands))
    return responses


def _open_channel(
    rec: _Recorder,
    step: str,
    sd: AID,
    identity: tuple[bytes, bytes],
    keys: KeyLookup,
    challenge: bytes,
    then: Sequence[CommandAPDU],
    then_names: Sequence[str],
) -> Generator[Batch, list[bytes], tuple[SCP03Session, list[ResponseAPDU]]]:
    """SELECT ``sd`` + INITIALIZE UPDATE, then EXTERNAL AUTHENTICATE + ``then`` (wrapped)."""
    iin, cin = identity
    try:
        static = keys(sd, iin, cin)
    except LookupError:
        raise rec.fail(step, "keys-unknown", sd=sd.hex()) from None
    scp = SCP03Session(static, security_level=0x33, host_challenge=challenge)
    label = f"diagnose: {step}"
    select, init = yield from _exchange(
        rec, step, (gp.select(sd), scp.initialize_update()), label, ("SELECT", "INITIALIZE UPDATE")
    )
    if select.sw != 0x9000:
        raise rec.fail(step, "select-refused", command="SELECT", sw=select.sw, sd=sd.hex())
    if init.sw != 0x9000:
        raise rec.fail(step, "keys-rejected", command="INITIALIZE UPDATE", sw=init.sw, sd=sd.hex())
    try:
        ea = scp.authenticate(init)
    except SCP03Error:
        raise rec.fail(step, "keys-rejected", command="INITIALIZE UPDATE", reason="card cryptogram") from None
    wrapped = [ea, *scp.wrap_all(list(then))]
    names = ["EXTERNAL AUTHENTICATE", *then_names]
    out = yield from _exchange(rec, step, wrapped, label, names)
    try:
        unwrapped = scp.unwrap_all(out)
    except SCP03Error:
        raise rec.fail(step, "keys-rejected", command="EXTERNAL AUTHENTICATE", reason="R-MAC") from None
    finally:
        scp.discard_pending()
    if unwrapped[0].sw != 0x9000:
        raise rec.fail(step, "keys-rejected", command="EXTERNAL AUTHENTICATE", sw=unwrapped[0].sw)
    return scp, unwrapped[1:]


# card CIN -> (the card APs the service believes are on this card, every card AP it knows of)
ApLookup = Callable[[bytes], tuple[Sequence[AID], Sequence[AID]]]


def probe(
    plan: ProbePlan,
    *,
    keys: KeyLookup,
    host_challenge: Callable[[int], bytes],
    card_aps: ApLookup | None = None,
) -> Probe:
    """The diagnosis conversation; returns :meth:`ProbeResult.to_dict`. ``host_challenge(n)``
    gives the n-th SCP03 host challenge (deterministic, so the conversation replays).
    ``card_aps``, when given, is asked once the card's CIN is known which card APs to expect
    (it replaces the plan's ``expected`` and ``known``)."""
    rec = _Recorder(plan)
    with contextlib.suppress(_Stop):
        yield from _probe(plan, rec, keys, host_challenge, card_aps)
    return rec.result.to_dict()


def _probe(
    plan: ProbePlan,
    rec: _Recorder,
    keys: KeyLookup,
    host_challenge: Callable[[int], bytes],
    card_aps: ApLookup | None,
) -> Probe:
    _check_presence(plan.presence, rec)
    facts = rec.result.facts

    # The card manager answers, and tells the card's identity.
    step = "card_manager"
    select, *identity = yield from _exchange(
        rec,
        step,
        (gp.select(ISD_AID), gp.get_data(gp.TAG_IIN), gp.get_data(gp.TAG_CIN)),
        "diagnose: card manager",
        ("SELECT", "GET DATA IIN", "GET DATA CIN"),
    )
    if select.sw == SW_LOCKED:
        rec.passed(step)
        raise rec.fail("life_cycle", "card-locked", command="SELECT", sw=select.sw)
    if select.sw != 0x9000:
        raise rec.fail(step, "no-card-manager", command="SELECT", sw=select.sw)
    for name, r in zip(("GET DATA IIN", "GET DATA CIN"), identity, strict=True):
        if r.sw != 0x9000:
            raise rec.fail(step, "no-card-identity", command=name, sw=r.sw)
    try:
        iin, cin = gp.parse_iin(identity[0].data), gp.parse_cin(identity[1].data)
    except gp.GPError:
        raise rec.fail(step, "no-card-identity", command="GET DATA") from None
    facts.update(iin=iin.hex().upper(), cin=cin.hex().upper())
    if card_aps is not None:
        expected, known = card_aps(cin)
        plan = replace(plan, expected=tuple(expected), known=tuple(known))
        rec.replan(plan)
    rec.passed(step, iin=facts["iin"], cin=facts["cin"])
    rec.passed("life_cycle")

    # Each area SD is there and not locked.
    sds = [AREA_SD_AIDS[a] for a in plan.areas]
    names = [f"area_sd:{a.name.lower()}" for a in plan.areas]
    answers = yield from _exchange(
        rec, names[0], [gp.select(sd) for sd in sds], "diagnose: area SDs", ["SELECT"] * len(sds), names
    )
    for name, r in zip(names, answers, strict=False):
        if r.sw == SW_LOCKED:
            raise rec.fail(name, "area-locked", command="SELECT", sw=r.sw)
        if r.sw != 0x9000:
            raise rec.fail(name, "area-sd-missing", command="SELECT", sw=r.sw)
        rec.passed(name)

    # SCP03 opens with the card's keys in each area; free memory there.
    n = 0
    for area in plan.areas:
        tag = area.name.lower()
        _scp, (res,) = yield from _open_channel(
            rec,
            f"scp03:{tag}",
            AREA_SD_AIDS[area],
            (iin, cin),
            keys,
            host_challenge(n),
            [gp.get_data(gp.TAG_RESOURCES)],
            ["GET DATA FF21"],
        )
        n += 1
        rec.passed(f"scp03:{tag}")
        if res.sw != 0x9000:
            raise rec.fail(f"memory:{tag}", "no-resources", command="GET DATA FF21", sw=res.sw)
        resources = gp.parse_resources(res.data)
        need = max(1, plan.need_free.get(area, 1))
        detail = {"free": resources.free_nonvolatile, "quota": resources.quota, "need": need}
        facts[f"free:{tag}"] = detail
        if resources.free_nonvolatile < need:
            raise rec.fail(f"memory:{tag}", "area-full", command="GET DATA FF21", **detail)
        rec.passed(f"memory:{tag}", **detail)

    # GET STATUS through the card manager: the standard APs (a genuine My Number Card) and the
    # provider's card APs against what the service expects.
    step = "content"
    scp, (page,) = yield from _open_channel(
        rec,
        step,
        ISD_AID,
        (iin, cin),
        keys,
        host_challenge(n),
        [gp.get_status(gp.StatusKind.APPLICATIONS)],
        ["GET STATUS"],
    )
    entries: list[gp.StatusEntry] = []
    for _page in range(MAX_STATUS_PAGES):
        if page.sw not in (0x9000, 0x6310):
            raise rec.fail(step, "no-status", command="GET STATUS", sw=page.sw)
        entries += gp.parse_get_status(page.data)
        if page.sw == 0x9000:
            break
        out = yield from _exchange(
            rec,
            step,
            scp.wrap_all([gp.get_status(gp.StatusKind.APPLICATIONS, next_part=True)]),
            "diagnose: content",
            ["GET STATUS"],
        )
        try:
            (page,) = scp.unwrap_all(out)
        except SCP03Error:
            raise rec.fail(step, "keys-rejected", command="GET STATUS", reason="R-MAC") from None
    _check_content(plan, rec, entries)

    # The provider's card APs answer SELECT (and tell whether their PIN is blocked).
    for aid in plan.expected:
        step = f"ap:{aid.hex()}"
        r_select, *rest = yield from _exchange(
            rec, step, (gp.select(aid), VERIFY_STATUS), "diagnose: card AP", ("SELECT", "VERIFY")
        )
        if r_select.sw != 0x9000:
            finding = {
                SW_LOCKED: "ap-locked",
                SW_NOT_PERSONALISED: "ap-half-installed",
                SW_NOT_FOUND: "ap-missing",
            }.get(r_select.sw, "select-refused")
            raise rec.fail(step, finding, command="SELECT", sw=r_select.sw)
        verify = rest[0].sw
        if verify == SW_PIN_BLOCKED:
            raise rec.fail(step, "pin-blocked", command="VERIFY", sw=verify)
        pin = "none" if verify == SW_NO_PIN else ("tries" if verify >> 4 == 0x63C else "ok")
        rec.passed(step, pin=pin, **({"tries_left": verify & 0x0F} if pin == "tries" else {}))
    return rec.result.to_dict()


def _check_content(plan: ProbePlan, rec: _Recorder, entries: list[gp.StatusEntry]) -> None:
    step = "content"
    listed = {e.aid: e for e in entries}
    missing_standard = [a.hex() for a in STANDARD_AP_AIDS if a not in listed]
    if missing_standard:
        raise rec.fail(step, "standard-aps-missing", command="GET STATUS", aids=missing_standard)
    half = [a.hex() for a in plan.expected if a in listed and listed[a].life_cycle & 0x7F != 0x0F]
    locked = [a.hex() for a in plan.expected if a in listed and listed[a].locked]
    missing = [a.hex() for a in plan.expected if a not in listed]
    unknown = [a.hex() for a in plan.known if a in listed and a not in plan.expected]
    rec.result.facts["listed"] = sorted(a.hex() for a in listed if bytes(a).startswith(INSTANCE_PREFIX))
    if locked:
        raise rec.fail(step, "ap-locked", command="GET STATUS", aids=locked)
    if half:
        raise rec.fail(step, "ap-half-installed", command="GET STATUS", aids=half)
    if missing:
        raise rec.fail(step, "ap-missing", command="GET STATUS", aids=missing)
    if unknown:
        raise rec.fail(step, "ap-unknown", command="GET STATUS", aids=unknown)
    rec.passed(step, standard_aps=len(STANDARD_AP_AIDS), card_aps=len(rec.result.facts["listed"]))


# --- the classifier ------------------------------------------------------------------------------

_FINDINGS: dict[str, FaultClass] = {
    "no-reader": FaultClass.NO_READER,
    "no-card": FaultClass.NO_CARD,
    "atr-not-my-number-card": FaultClass.NOT_MY_NUMBER_CARD,
    "no-card-manager": FaultClass.NOT_MY_NUMBER_CARD,
    "no-card-identity": FaultClass.NOT_MY_NUMBER_CARD,
    "area-sd-missing": FaultClass.NOT_MY_NUMBER_CARD,
    "standard-aps-missing": FaultClass.NOT_MY_NUMBER_CARD,
    "card-locked": FaultClass.CARD_LOCKED,
    "area-locked": FaultClass.AREA_LOCKED,
    "ap-locked": FaultClass.AREA_LOCKED,
    "keys-unknown": FaultClass.KEYS_REJECTED,
    "keys-rejected": FaultClass.KEYS_REJECTED,
    "area-full": FaultClass.AREA_FULL,
    "ap-half-installed": FaultClass.AP_HALF_INSTALLED,
    "ap-missing": FaultClass.AP_MISSING,
    "ap-unknown": FaultClass.AP_MISSING,
    "pin-blocked": FaultClass.PIN_BLOCKED,
    "card-lost": FaultClass.COMMUNICATION_LOST,
}


def classify(result: ProbeResult | Mapping[str, Any]) -> FaultClass:
    """The fault class of a probe result (its first failed step)."""
    if not isinstance(result, ProbeResult):
        result = ProbeResult.from_dict(result)
    failed = result.failed
    if failed is None:
        return FaultClass.NO_FAULT
    return _FINDINGS.get(failed.finding, FaultClass.UNCLASSIFIED)


# Job error codes (stable, written by the loading service) that say a server rule refused the
# operation before the card was touched, or that the card went away mid-operation.
REFUSAL_CODES = frozenset(
    {"refused-scope", "service-closed", "maintenance", "consent-missing", "area-rule", "refused"}
    # the loading rules' own codes (loading.rules.JobRefused): scope, hours, maintenance, consent,
    # the area rules and the other checks made before the card is changed
    | {
        "scope",
        "service_closed",
        "consent_missing",
        "provider_not_live",
        "not_loadable",
        "nothing_chosen",
        "resident_not_confirmed",
        "local_area_other_municipality",
        "move_in_municipality_only",
        "already_installed",
        "not_on_card",
        "terminal_busy",
        "no_read",
        "user_number",
        "pin",
        "request_key",
        "card_busy",
        "card_changed",
    }
)
LOST_CODES = frozenset({"card-lost", "interrupted", "agent-silent", "CardLost"})
# The loading engine's own error codes (gpcard.operations.ReadFailed and the job outcome) that
# already name the class.
JOB_CODES: dict[str, FaultClass] = {
    "wrong-keys": FaultClass.KEYS_REJECTED,
    "keys-rejected": FaultClass.KEYS_REJECTED,
    "keys-unknown": FaultClass.KEYS_REJECTED,
    "CardCryptogramError": FaultClass.KEYS_REJECTED,
    "not-my-number-card": FaultClass.NOT_MY_NUMBER_CARD,
    "capacity": FaultClass.AREA_FULL,  # refused before the card: the read found the area full
}


def classify_job_log(entries: Iterable[Mapping[str, Any]], error_code: str = "") -> FaultClass:
    """The fault class of a failed job from its own step log, without a new probe.

    ``entries`` are the job's steps in order, each with ``command`` (a command name such as
    "SELECT", "INSTALL [for install]"), ``sw`` (hex, empty when the card did not answer) and
    optionally ``target`` ("isd", "sd", "ap") and ``code`` (a stable error code); ``error_code`` is
    the job's own. The last step with an unexpected status word decides."""
    steps = list(entries)
    codes = {error_code, *(str(e.get("code", "")) for e in steps)} - {""}
    if codes & REFUSAL_CODES or any(c.startswith("refused") for c in codes):
        return FaultClass.SERVER_REFUSED
    if codes & LOST_CODES:
        return FaultClass.COMMUNICATION_LOST
    for code in sorted(codes):
        if code in JOB_CODES:
            return JOB_CODES[code]
    failing = [e for e in steps if e.get("sw") and int(str(e["sw"]), 16) not in (0x9000, 0x6310)]
    if not failing:
        return FaultClass.COMMUNICATION_LOST if steps and not steps[-1].get("sw") else FaultClass.UNCLASSIFIED
    last = failing[-1]
    sw = int(str(last["sw"]), 16)
    command = str(last.get("command", "")).upper()
    target = str(last.get("target", "")).lower()
    if sw == SW_LOCKED:
        return FaultClass.CARD_LOCKED if target == "isd" else FaultClass.AREA_LOCKED
    if sw == SW_NOT_ENOUGH_MEMORY:
        return FaultClass.AREA_FULL
    if sw == SW_PIN_BLOCKED:
        return FaultClass.PIN_BLOCKED
    if sw == SW_SECURITY and ("AUTHENTICATE" in command or "INITIALIZE" in command):
        return FaultClass.KEYS_REJECTED
    if sw == SW_NOT_PERSONALISED and ("PERSONAL" in command or "STORE DATA" in command or target == "ap"):
        return FaultClass.AP_HALF_INSTALLED
    if sw in (SW_NOT_FOUND, SW_NO_PIN) and ("DELETE" in command or target == "ap"):
        return FaultClass.AP_MISSING
    if sw in (SW_NOT_FOUND, 0x6D00, 0x6E00) and target == "isd":
        return FaultClass.NOT_MY_NUMBER_CARD
    return FaultClass.UNCLASSIFIED
