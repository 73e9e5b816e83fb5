"""Expanded remote command scripts (GlobalPlatform Amendment B, ETSI TS 102 226 §5.2):
a command script is ``AA { 22 C-APDU, 22 C-APDU, ... }``; the response script is
``AB { 80 number of commands executed, 23 R-APDU, ... }``. The agent runs the C-APDUs in order and
stops at the first unexpected status word, so a response script may hold fewer R-APDUs than the
command script had C-APDUs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpcard import tlv
from gpcard.apdu import APDUError, CommandAPDU, ResponseAPDU

__all__ = [
    "ScriptError",
    "ResponseScript",
    "encode_command_script",
    "parse_command_script",
    "encode_response_script",
    "parse_response_script",
]

# HTTP framing of scripts in the Amendment B style (DESIGN.md "The relay"): the agent POSTs a
# response script, the server answers with the next command script (204 No Content: no more).
ADMIN_PROTOCOL = "globalplatform-remote-admin/1.0"  # X-Admin-Protocol
CONTENT_TYPE_COMMAND_SCRIPT = "application/vnd.globalplatform.card-content-mgt;version=1.0"
CONTENT_TYPE_RESPONSE_SCRIPT = "application/vnd.globalplatform.card-content-mgt-response;version=1.0"
HEADER_PROTOCOL = "X-Admin-Protocol"
HEADER_NEXT_URI = "X-Admin-Next-URI"
HEADER_SCRIPT_STATUS = "X-Admin-Script-Status"
SCRIPT_STATUS_VALUES = ("ok", "unknown-application", "not-a-security-domain", "security-error")

TAG_COMMAND_SCRIPT = 0xAA
TAG_C_APDU = 0x22
TAG_RESPONSE_SCRIPT = 0xAB
TAG_EXECUTED = 0x80
TAG_R_APDU = 0x23


class ScriptError(ValueError):
    """A command or response script that is not well formed."""


def encode_command_script(commands: Sequence[CommandAPDU | bytes]) -> bytes:
    if not commands:
        raise ScriptError("a command script holds at least one C-APDU")
    items: list[bytes] = []
    for c in commands:
        raw = c.encode() if isinstance(c, CommandAPDU) else bytes(c)
        try:
            CommandAPDU.parse(raw)
        except APDUError as e:
            raise ScriptError(f"C-APDU {len(items)}: {e}") from None
        items.append(tlv.encode(TAG_C_APDU, raw))
    return tlv.encode(TAG_COMMAND_SCRIPT, items)


def _children(data: bytes, tag: int, name: str) -> list[tlv.TLV]:
    try:
        return tlv.decode_single(data, tag).children()
    except tlv.TLVError as e:
        raise ScriptError(f"{name}: {e}") from None


def parse_command_script(data: bytes) -> list[CommandAPDU]:
    """The C-APDUs of an ``AA`` script, each checked to be a well-formed APDU."""
    out = []
    for i, item in enumerate(_children(data, TAG_COMMAND_SCRIPT, "command script")):
        if item.tag != TAG_C_APDU:
            raise ScriptError(f"command script item {i}: tag {item.tag:X} is not 22 (C-APDU)")
        try:
            out.append(CommandAPDU.parse(item.value))
        except APDUError as e:
            raise ScriptError(f"command script item {i}: {e}") from None
    if not out:
        raise ScriptError("command script holds no C-APDU")
    return out


@dataclass(frozen=True)
class ResponseScript:
    executed: int
    responses: tuple[ResponseAPDU, ...]


def encode_response_script(responses: Sequence[ResponseAPDU | bytes], executed: int | None = None) -> bytes:
    raws = [r.encode() if isinstance(r, ResponseAPDU) else bytes(r) for r in responses]
    for i, raw in enumerate(raws):
        if len(raw) < 2:
            raise ScriptError(f"R-APDU {i} has no status word")
    count = len(raws) if executed is None else executed
    if count != len(raws):
        raise ScriptError(f"{count} commands executed but {len(raws)} R-APDUs given")
    return tlv.encode(
        TAG_RESPONSE_SCRIPT,
        [tlv.encode(TAG_EXECUTED, bytes([count]) if count < 256 else count.to_bytes(2, "big"))]
        + [tlv.encode(TAG_R_APDU, raw) for raw in raws],
    )


def parse_response_script(data: bytes) -> ResponseScript:
    """``AB { 80 n, 23 R-APDU * n }``: the count must match the R-APDUs that follow."""
    items = _children(data, TAG_RESPONSE_SCRIPT, "response script")
    if not items or items[0].tag != TAG_EXECUTED:
        raise ScriptError("response script must start with 80 (number of commands executed)")
    if not 1 <= len(items[0].value) <= 2:
        raise ScriptError("number of commands executed (80) must be 1 or 2 bytes")
    executed = int.from_bytes(items[0].value, "big")
    responses = []
    for i, item in enumerate(items[1:]):
        if item.tag != TAG_R_APDU:
            raise ScriptError(f"response script item {i}: tag {item.tag:X} is not 23 (R-APDU)")
        try:
            responses.append(ResponseAPDU.parse(item.value))
        except APDUError as e:
            raise ScriptError(f"response script item {i}: {e}") from None
    if executed != len(responses):
        raise ScriptError(f"response script says {executed} executed but holds {len(responses)} R-APDUs")
    return ResponseScript(executed, tuple(responses))
