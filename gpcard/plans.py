"""Whole card operations as lists of plain commands, and their trip through the relay.

The loading service builds a plan (plain GP commands for one card AP operation), wraps it under
the area SD's SCP03 session in one go and sends it to the agent as one Amendment B script; the
agent's response script is then unwrapped in order. :class:`SecureBatch` does that round trip and
keeps the session in step with the card when the agent stopped early.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gpcard import gp
from gpcard.aid import AID, ISD_AID
from gpcard.apdesc import (
    APType,
    CardAPDescription,
    load_blocks,
    load_file_hash,
    standard_elf_aid,
    standard_module_aid,
)
from gpcard.apdu import CommandAPDU, ResponseAPDU
from gpcard.scp03 import SCP03Session
from gpcard.script import ScriptError, encode_command_script, parse_response_script

__all__ = [
    "SecureBatch",
    "delete_ap",
    "install_custom_ap",
    "install_standard_ap",
    "load_custom_ap",
    "personalise_ap",
]


def personalise_ap(instance: AID | bytes, dgis: Iterable[bytes]) -> list[CommandAPDU]:
    """INSTALL [for personalization] + STORE DATA blocks (whole DGIs per block)."""
    return [gp.install_for_personalization(instance), *gp.store_data_commands(dgis)]


def install_standard_ap(
    description: CardAPDescription, instance: AID | bytes, dgis: Iterable[bytes] | None = None
) -> list[CommandAPDU]:
    """Type A/C/D: INSTALL [for install and make selectable] with the description, then (if DGIs
    are given) personalisation."""
    kind = APType(description.ap_type)
    cmds = [
        gp.install_for_install(
            standard_elf_aid(kind),
            standard_module_aid(kind),
            instance,
            parameters=gp.install_parameters(description.encode()),
        )
    ]
    if dgis is not None:
        cmds += personalise_ap(instance, dgis)
    return cmds


def load_custom_ap(
    *,
    load_file: AID | bytes,
    sd: AID | bytes,
    data_block: bytes,
    signature: bytes,
    dap_sd: AID = ISD_AID,
) -> list[CommandAPDU]:
    """INSTALL [for load] (hash, load parameters) + the LOAD blocks of a signed load file."""
    return [
        gp.install_for_load(
            load_file,
            sd,
            data_block_hash=load_file_hash(data_block),
            parameters=gp.load_parameters(len(data_block)),
        ),
        *gp.load_commands(load_blocks(dap_sd, data_block, signature)),
    ]


def install_custom_ap(
    *,
    load_file: AID | bytes,
    module: AID | bytes,
    instance: AID | bytes,
    sd: AID | bytes,
    data_block: bytes,
    signature: bytes,
    dgis: Iterable[bytes] | None = None,
    dap_sd: AID = ISD_AID,
) -> list[CommandAPDU]:
    """Custom AP: INSTALL [for load] + LOAD blocks + INSTALL [for install and make selectable]
    (``C9 00``), then (if DGIs are given) personalisation."""
    cmds = load_custom_ap(
        load_file=load_file, sd=sd, data_block=data_block, signature=signature, dap_sd=dap_sd
    )
    cmds.append(gp.install_for_install(load_file, module, instance))
    if dgis is not None:
        cmds += personalise_ap(instance, dgis)
    return cmds


def delete_ap(instance: AID | bytes, load_file: AID | bytes | None = None) -> list[CommandAPDU]:
    """DELETE the instance; for a custom AP also its load file (with anything related)."""
    cmds = [gp.delete(instance)]
    if load_file is not None:
        cmds.append(gp.delete(load_file, related=True))
    return cmds


@dataclass
class SecureBatch:
    """One relay round trip: plain commands → wrapped command script → unwrapped responses."""

    scp: SCP03Session
    plain: Sequence[CommandAPDU]
    _wrapped: list[CommandAPDU] = field(default_factory=list, init=False, repr=False)

    def script(self) -> bytes:
        """Wrap every command now (MAC chaining and counters need no responses) and encode AA."""
        if self._wrapped:
            raise ScriptError("this batch was already wrapped; build a new one")
        self._wrapped = self.scp.wrap_all(list(self.plain))
        return encode_command_script(self._wrapped)

    def results(self, response_script: bytes) -> list[ResponseAPDU]:
        """Unwrap the agent's AB script in order. If the agent stopped early, the commands it never
        sent are dropped from the session so the next batch stays in step with the card."""
        if not self._wrapped:
            raise ScriptError("no command script was produced for this batch")
        parsed = parse_response_script(response_script)
        if parsed.executed > len(self._wrapped):
            raise ScriptError(f"agent reports {parsed.executed} executed of {len(self._wrapped)} sent")
        try:
            unwrapped = self.scp.unwrap_all(list(parsed.responses))
        finally:
            self.scp.discard_pending()
        return unwrapped

    @staticmethod
    def first_failure(responses: Sequence[ResponseAPDU], expect: Sequence[int] = (0x9000,)) -> int | None:
        """Index of the first response with an unexpected status word, or None."""
        return next((i for i, r in enumerate(responses) if r.sw not in expect), None)
