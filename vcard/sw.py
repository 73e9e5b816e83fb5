"""Status words the card answers (ISO/IEC 7816-4, GPC 2.3, docs/card-protocol.md)."""

OK = 0x9000
MORE_DATA = 0x6310
LOCKED = 0x6283
MEMORY_FAILURE = 0x6581
WRONG_LENGTH = 0x6700
LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
INCOMPATIBLE_FILE = 0x6981
SECURITY_STATUS = 0x6982
BLOCKED = 0x6983
CONDITIONS = 0x6985
NO_CURRENT_EF = 0x6986
BAD_DATA = 0x6A80
NOT_FOUND = 0x6A82
RECORD_NOT_FOUND = 0x6A83
NOT_ENOUGH_MEMORY = 0x6A84
BAD_P1P2 = 0x6A86
REFERENCED_DATA_NOT_FOUND = 0x6A88
WRONG_OFFSET = 0x6B00
INS_NOT_SUPPORTED = 0x6D00
CLA_NOT_SUPPORTED = 0x6E00
NO_PRECISE_DIAGNOSIS = 0x6F00


def pin_tries(left: int) -> int:
    """63Cx: wrong PIN, x tries left."""
    return 0x63C0 | (left & 0x0F)


class CardError(Exception):
    """Raised inside command handlers to answer with a status word (and change nothing)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw
