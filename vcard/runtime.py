"""Volatile card state (lost on reset, power loss or tearing) and the fault switches."""

from __future__ import annotations

from dataclasses import dataclass, field

from vcard.scp03 import CardChannel


@dataclass
class Faults:
    """Faults selectable per card (API and ``python -m vcard serve --fault ...``)."""

    tear_at: int | None = None  # the N-th command from now loses power: not applied, card off until reset
    mute_after: int | None = None  # after N more commands the card stops answering altogether
    pin_blocked: bool = False  # every PIN (card APs and JPKI) answers 6983
    memory_full: bool = False  # every area has 0 bytes free: installs and loads get 6A84
    wrong_keys: bool = False  # the SDs hold other keys than the bureau's: SCP03 fails (6982)

    @classmethod
    def parse(cls, specs: list[str]) -> tuple[Faults, list[str]]:
        """``tear=N``, ``mute=N``, ``pin-blocked``, ``memory-full``, ``wrong-keys`` -> Faults; also
        returns the state faults ``card-locked`` / ``sd-locked=local|extended`` to apply to the card."""
        faults = cls()
        state_faults = []
        for spec in specs:
            name, _, value = spec.partition("=")
            if name == "tear":
                faults.tear_at = int(value)
            elif name == "mute":
                faults.mute_after = int(value or "0")
            elif name == "pin-blocked":
                faults.pin_blocked = True
            elif name == "memory-full":
                faults.memory_full = True
            elif name == "wrong-keys":
                faults.wrong_keys = True
            elif name in ("card-locked", "sd-locked"):
                state_faults.append(spec)
            else:
                raise ValueError(f"unknown fault {spec!r}")
        return faults, state_faults


@dataclass
class PendingLoad:
    elf: bytes
    sd: bytes
    hash: bytes
    size: int
    next_block: int = 0
    data: bytes = b""


@dataclass
class Session:
    selected: bytes | None = None
    kind: str = ""  # "sd", "app", "standard" or "" (nothing selected)
    locked: bool = False  # the selection answered 6283: everything but GET DATA / unlock refused
    channel: CardChannel | None = None
    channel_ready: bool = False  # INITIALIZE UPDATE done, EXTERNAL AUTHENTICATE awaited
    # card content management
    pending_load: PendingLoad | None = None
    personalising: bytes | None = None
    store_block: int = 0
    status_rest: list[bytes] = field(default_factory=list)
    status_p1: int = 0
    # card AP / JPKI
    pin_verified: bool = False
    current_ef: int | None = None
    jpki_verified: set[int] = field(default_factory=set)

    def close_channel(self) -> None:
        self.channel = None
        self.channel_ready = False

    @property
    def authenticated(self) -> bool:
        return self.channel is not None and self.channel.authenticated
