"""Reading a card AP by its description (docs/card-protocol.md, "Reading a card AP").

SELECT the AP by AID; when a file's read rule asks for it, mutual authentication (SCP03 with the
AP's key: C-MAC for rule 02, C-MAC + C-DEC + R-MAC + R-ENC for rule 03, i.e. type D's secure
messaging on every command) and VERIFY with the holder's or the system-fixed PIN; then every
readable file, as binary or records. The result is typed; failures are the exceptions of
``cardap_access.errors``. The log has step names and status words only, never data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cardap_access import errors
from gpcard.apdesc import AccessRule, CardAPDescription, Charset, DescriptionError, FileSpec, FileStructure
from gpcard.apdu import CommandAPDU
from gpcard.keypackage import APAccess, KeyPackage
from gpcard.scp03 import CardCryptogramError, SCP03Error, StaticKeys
from gpcard.session import CardSession
from gpcard.sw import CardError

log = logging.getLogger("cardap_access")

MY_NUMBER_CARD_ATR = bytes.fromhex("3BE000FF8131FE4514")
AREA_SD_AIDS = (bytes.fromhex("D392100031000202"), bytes.fromhex("D392100031000201"))
AP_KEY_VERSION = 0x01  # the card AP's own key set (docs/card-protocol.md, "Reading a card AP")
READ_CHUNK = 256
SECURE_READ_CHUNK = 223  # with R-ENC padding and the R-MAC the answer stays within 256 bytes
CHANNEL_RULES = (AccessRule.PIN_MUTUAL_AUTH, AccessRule.PIN_MUTUAL_AUTH_SM)
UNREADABLE = (AccessRule.PERSONALISATION_ONLY, AccessRule.NEVER)


class Card(Protocol):
    """What the reader needs from a card connection (a PcscCard, or an adapter in tests)."""

    atr: bytes

    def transmit(self, apdu: bytes) -> bytes: ...


@dataclass(frozen=True)
class BinaryFile:
    fid: int
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"fid": f"{self.fid:04X}", "structure": "binary", "data": self.data.hex().upper()}


@dataclass(frozen=True)
class RecordFile:
    fid: int
    records: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "fid": f"{self.fid:04X}",
            "structure": "records",
            "records": [r.hex().upper() for r in self.records],
        }


CardFile = BinaryFile | RecordFile


@dataclass(frozen=True)
class ReadResult:
    aid: str
    name: str
    ap_type: str
    user_number: str
    files: tuple[CardFile, ...]

    def file(self, fid: int) -> CardFile | None:
        return next((f for f in self.files if f.fid == fid), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "aid": self.aid,
            "name": self.name,
            "type": self.ap_type,
            "user_number": self.user_number,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class PresentAP:
    """A card AP of the key package found on the card; ``state`` is ready, not_personalised or locked."""

    access: APAccess
    state: str


def _trace(step: str, header: bytes, sw: int) -> None:
    log.debug("%s %s SW %04X", step, header.hex().upper(), sw)


class CardAPReader:
    """Reads the card APs of one key package from one card."""

    def __init__(self, card: Card, package: KeyPackage, *, trace: Callable[[str, bytes, int], None] = _trace):
        self.card = card
        self.package = package
        self._trace = trace
        self._checked = False

    # --- the card ------------------------------------------------------------------------------

    def _session(self) -> CardSession:
        return CardSession(self.card.transmit, trace=self._trace)

    def check_card(self) -> None:
        """NotMyNumberCardError unless the card is a My Number Card (its ATR, else an area SD)."""
        if self._checked:
            return
        if bytes(self.card.atr) != MY_NUMBER_CARD_ATR:
            s = self._session()
            for sd in AREA_SD_AIDS:
                try:
                    s.select(sd)
                    break
                except CardError as e:
                    if e.sw == 0x6283:  # a locked area is still an area
                        break
            else:
                raise errors.NotMyNumberCardError()
        self._checked = True

    def _select(self, s: CardSession, aid: str) -> None:
        try:
            s.select(bytes.fromhex(aid))
        except CardError as e:
            if e.sw == 0x6A82:
                raise errors.APNotOnCardError(aid) from None
            if e.sw == 0x6985:
                raise errors.APNotPersonalisedError(aid) from None
            if e.sw == 0x6283:
                raise errors.APLockedError(aid) from None
            raise errors.CardReadError("SELECT", e.sw) from None

    def present(self) -> list[PresentAP]:
        """The key package's card APs that are on this card."""
        self.check_card()
        found = []
        for ap in self.package.aps:
            s = self._session()
            try:
                self._select(s, ap.aid)
                found.append(PresentAP(ap, "ready"))
            except errors.APNotOnCardError:
                continue
            except errors.APNotPersonalisedError:
                found.append(PresentAP(ap, "not_personalised"))
            except errors.APLockedError:
                found.append(PresentAP(ap, "locked"))
        return found

    # --- reading -------------------------------------------------------------------------------

    def _entry(self, aid: str) -> tuple[APAccess, CardAPDescription]:
        aid = aid.replace(" ", "").upper()
        entry = self.package.get(aid)
        if entry is None:
            raise errors.APNotInPackageError(aid)
        try:
            return entry, CardAPDescription.decode(entry.description)
        except DescriptionError:
            raise errors.PackageTamperedError() from None

    def read(self, aid: str, pin: str | None = None) -> ReadResult:
        """Read every readable file of the card AP ``aid``; ``pin`` is the holder's PIN (ignored
        when the AP uses the system-fixed PIN, which the key package carries)."""
        entry, desc = self._entry(aid)
        files = [f for f in desc.files if f.read_rule not in UNREADABLE]
        rules = {AccessRule(f.read_rule) for f in files}
        needs_pin = any(r.needs_pin for r in rules)
        level = None
        if AccessRule.PIN_MUTUAL_AUTH_SM in rules:
            level = 0x33
        elif AccessRule.PIN_MUTUAL_AUTH in rules:
            level = 0x01
        secret_pin = self._pin(entry, desc, pin) if needs_pin else None
        if level is not None and entry.key is None:
            raise errors.KeyPackageRefusedError(
                "このカードAPの鍵が含まれていません。", "it holds no key for this card AP."
            )
        self.check_card()
        s = self._session()
        self._select(s, entry.aid)
        try:
            if level is not None:
                assert entry.key is not None
                self._authenticate(s, entry.key, level)
            if secret_pin is not None:
                self._verify(s, secret_pin)
            content = [self._read_file(s, f, level == 0x33) for f in files]
        except CardError as e:
            if s.scp is not None or e.sw == 0x6982 and level is not None:
                raise errors.SecureMessagingError() from None
            raise errors.CardReadError(e.command or "READ", e.sw) from None
        except SCP03Error:
            raise errors.SecureMessagingError() from None
        number = self._user_number(desc, content)
        return ReadResult(entry.aid, entry.name, entry.ap_type, number, tuple(content))

    @staticmethod
    def _pin(entry: APAccess, desc: CardAPDescription, pin: str | None) -> str:
        if entry.pin_source == "system":
            if not entry.system_pin:
                raise errors.KeyPackageRefusedError(
                    "システム固定の暗証番号が含まれていません。", "it holds no system-fixed PIN."
                )
            return entry.system_pin
        if pin is None or pin == "":
            raise errors.PinRequiredError()
        policy = desc.pin_policy
        low, high = (policy.min_length, policy.max_length) if policy else (4, 16)
        if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
            raise errors.PinFormatError(low, high)
        return pin

    @staticmethod
    def _authenticate(s: CardSession, key: bytes, level: int) -> None:
        try:
            s.open_secure_channel(StaticKeys.single(key, AP_KEY_VERSION), security_level=level)
        except CardCryptogramError:
            raise errors.AuthenticationFailedError() from None
        except CardError as e:
            if e.sw in (0x6982, 0x6A88, 0x6985):  # host cryptogram refused, or no key on the AP
                raise errors.AuthenticationFailedError() from None
            raise errors.CardReadError(e.command or "INITIALIZE UPDATE", e.sw) from None
        except SCP03Error:
            raise errors.AuthenticationFailedError() from None

    @staticmethod
    def _verify(s: CardSession, pin: str) -> None:
        expect = (0x9000, 0x6983, *range(0x63C0, 0x63D0))
        resp = s.send(CommandAPDU(0x00, 0x20, 0x00, 0x80, pin.encode("ascii")), expect=expect, name="VERIFY")
        if resp.sw == 0x6983 or resp.sw == 0x63C0:
            raise errors.PinBlockedError()
        if resp.sw != 0x9000:
            raise errors.WrongPinError(resp.sw & 0x0F)

    @staticmethod
    def _read_file(s: CardSession, spec: FileSpec, secure: bool) -> CardFile:
        s.send(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, spec.fid.to_bytes(2, "big")), name="SELECT EF")
        if spec.structure == FileStructure.LINEAR_FIXED:
            records = tuple(
                s.send(CommandAPDU(0x00, 0xB2, n, 0x04, le=256), name="READ RECORD").data
                for n in range(1, spec.record_count + 1)
            )
            return RecordFile(spec.fid, records)
        chunk = SECURE_READ_CHUNK if secure else READ_CHUNK
        data = b""
        while len(data) < spec.length:
            offset = len(data)
            want = min(chunk, spec.length - offset)
            part = s.send(
                CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, le=want), name="READ BINARY"
            ).data
            if not part:
                break
            data += part[:want]
        return BinaryFile(spec.fid, data)

    @staticmethod
    def _user_number(desc: CardAPDescription, content: list[CardFile]) -> str:
        loc = desc.user_number
        target = next((f for f in content if f.fid == loc.fid), None)
        if target is None:
            raise errors.UserNumberError()
        raw = target.data if isinstance(target, BinaryFile) else target.records[loc.record - 1]
        value = raw[loc.offset : loc.offset + loc.length]
        text = value.decode("ascii", "replace")
        ok = text.isdigit() if loc.charset == Charset.DIGITS else text.isalnum() and text == text.upper()
        if len(value) != loc.length or not text.isascii() or not ok:
            raise errors.UserNumberError()
        return text
