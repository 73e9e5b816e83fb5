"""The card AP access module (カードAPアクセスモジュール): read a provider's card AP from a My Number
Card through any PC/SC reader, with the access key package exported by the loading service.

    from cardap_access import CardAPReader, open_package, pcsc

    package = open_package("library.cardap-keys.json", passphrase=...)
    with pcsc.connected() as card:
        result = CardAPReader(card, package).read("D392F10200000001")
    print(result.user_number)
"""

from cardap_access.errors import AccessError
from cardap_access.package import load_private_key, open_package
from cardap_access.reader import BinaryFile, CardAPReader, PresentAP, ReadResult, RecordFile

__all__ = [
    "AccessError",
    "BinaryFile",
    "CardAPReader",
    "PresentAP",
    "ReadResult",
    "RecordFile",
    "load_private_key",
    "open_package",
]
