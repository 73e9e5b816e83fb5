"""Every failure a reader meets, as one exception class each, with a Japanese and an English
message. No message ever contains a PIN, a key or card data."""

from __future__ import annotations

import os


def language() -> str:
    """"ja" or "en": CARDAP_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG); Japanese by default."""
    for var in ("CARDAP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "en" if value.lower().startswith(("en", "c", "posix")) else "ja"
    return "ja"


class AccessError(Exception):
    """Base class: ``ja`` and ``en`` messages, ``code`` a stable machine-readable name."""

    code = "access_error"
    exit_status = 1

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(f"{ja} / {en}")
        self.ja = ja
        self.en = en

    def message(self, lang: str | None = None) -> str:
        return self.en if (lang or language()) == "en" else self.ja


class NoReaderError(AccessError):
    code = "no_reader"

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "カードリーダーが見つかりません。リーダーの接続とPC/SCサービス（pcscd）を確認してください。",
            "No card reader found: check the reader is connected and the PC/SC service (pcscd) runs.",
        )
        self.detail = detail


class NoCardError(AccessError):
    code = "no_card"

    def __init__(self, reader: str = "") -> None:
        where = f"（{reader}）" if reader else ""
        super().__init__(
            f"カードリーダー{where}にカードがありません。カードを置いてください。",
            f"No card in the reader{f' ({reader})' if reader else ''}: place the card on it.",
        )
        self.reader = reader


class NotMyNumberCardError(AccessError):
    code = "not_my_number_card"

    def __init__(self) -> None:
        super().__init__(
            "このカードはマイナンバーカードではありません。",
            "This card is not a My Number Card.",
        )


class APNotOnCardError(AccessError):
    code = "ap_not_on_card"

    def __init__(self, aid: str) -> None:
        super().__init__(
            f"このカードにはカードAP {aid} が搭載されていません。",
            f"Card AP {aid} is not on this card.",
        )
        self.aid = aid


class APNotPersonalisedError(AccessError):
    code = "ap_not_personalised"

    def __init__(self, aid: str) -> None:
        super().__init__(
            f"カードAP {aid} は搭載途中です（個別化が完了していません）。搭載窓口で再搭載してください。",
            f"Card AP {aid} is installed but not personalised: have it loaded again at a counter.",
        )
        self.aid = aid


class APLockedError(AccessError):
    code = "ap_locked"

    def __init__(self, aid: str) -> None:
        super().__init__(
            f"カードまたはカードAP {aid} はロックされています。",
            f"The card or card AP {aid} is locked.",
        )
        self.aid = aid


class APNotInPackageError(AccessError):
    code = "ap_not_in_package"

    def __init__(self, aid: str) -> None:
        super().__init__(
            f"この鍵パッケージにはカードAP {aid} の鍵がありません（他の提供者のカードAPは読めません）。",
            f"This key package holds nothing for card AP {aid} (another provider's card AP cannot be read).",
        )
        self.aid = aid


class PinRequiredError(AccessError):
    code = "pin_required"

    def __init__(self) -> None:
        super().__init__(
            "このカードAPの読み取りには利用者の暗証番号が必要です。",
            "Reading this card AP needs the holder's PIN.",
        )


class PinFormatError(AccessError):
    code = "pin_format"

    def __init__(self, min_length: int, max_length: int) -> None:
        super().__init__(
            f"暗証番号は{min_length}〜{max_length}桁の数字です（カードには送っていません）。",
            f"The PIN is {min_length} to {max_length} digits (nothing was sent to the card).",
        )


class WrongPinError(AccessError):
    code = "wrong_pin"

    def __init__(self, tries_left: int) -> None:
        super().__init__(
            f"暗証番号が違います。残り{tries_left}回でロックされます。",
            f"Wrong PIN: {tries_left} {'try' if tries_left == 1 else 'tries'} left before it is blocked.",
        )
        self.tries_left = tries_left


class PinBlockedError(AccessError):
    code = "pin_blocked"

    def __init__(self) -> None:
        super().__init__(
            "暗証番号がロックされています。搭載窓口で手続きしてください。",
            "The PIN is blocked: the holder must go to a counter.",
        )


class AuthenticationFailedError(AccessError):
    code = "authentication_failed"

    def __init__(self) -> None:
        super().__init__(
            "相互認証に失敗しました（鍵が違います）。最新の鍵パッケージを使ってください。",
            "Mutual authentication failed (wrong key): use the current key package.",
        )


class SecureMessagingError(AccessError):
    code = "secure_messaging"

    def __init__(self) -> None:
        super().__init__(
            "セキュアメッセージングの検証に失敗しました。通信が改ざんされたか途切れました。",
            "Secure messaging failed: the exchange with the card was altered or broken.",
        )


class CardRemovedError(AccessError):
    code = "card_removed"

    def __init__(self) -> None:
        super().__init__(
            "読み取り中にカードが離れました。カードを置き直してもう一度読んでください。",
            "The card was removed during the read: place it again and read once more.",
        )


class CardReadError(AccessError):
    """The card answered a status word no rule above explains."""

    code = "card_error"

    def __init__(self, step: str, sw: int) -> None:
        super().__init__(
            f"カードの読み取りに失敗しました（{step}: SW {sw:04X}）。",
            f"Reading the card failed ({step}: SW {sw:04X}).",
        )
        self.step = step
        self.sw = sw


class KeyPackageRefusedError(AccessError):
    code = "key_package"

    def __init__(self, ja: str, en: str) -> None:
        super().__init__(f"鍵パッケージを使えません: {ja}", f"The key package cannot be used: {en}")


class WrongProviderError(KeyPackageRefusedError):
    code = "wrong_provider"

    def __init__(self) -> None:
        super().__init__("別の提供者に発行された鍵パッケージです。", "it was issued to another provider.")


class PackageSecretError(KeyPackageRefusedError):
    code = "package_secret"

    def __init__(self) -> None:
        super().__init__(
            "パスフレーズまたは秘密鍵が違うか、パッケージが改ざんされています。",
            "wrong passphrase or private key, or the package was altered.",
        )


class PackageTamperedError(KeyPackageRefusedError):
    code = "package_tampered"

    def __init__(self) -> None:
        super().__init__("パッケージの内容が改ざんされています。", "its contents were altered.")


class UserNumberError(AccessError):
    code = "user_number"

    def __init__(self) -> None:
        super().__init__(
            "カードAPの利用者番号が読み取れないか、形式が正しくありません。",
            "The card AP's user number is missing or malformed.",
        )
