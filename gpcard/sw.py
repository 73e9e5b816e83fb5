"""Status words (ISO/IEC 7816-4 §5.6, GlobalPlatform Card Specification 2.3 §11) with short
English and Japanese meanings, for fault diagnosis shown to operators."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CardError", "SWInfo", "describe", "SW_OK", "SW_MORE_DATA"]

SW_OK = 0x9000
SW_MORE_DATA = 0x6310


@dataclass(frozen=True)
class SWInfo:
    sw: int
    en: str
    ja: str

    @property
    def hex(self) -> str:
        return f"{self.sw:04X}"


# Exact status words. Where GlobalPlatform gives a word a specific meaning for card content
# management, that meaning is used (this library talks to security domains).
_EXACT: dict[int, tuple[str, str]] = {
    0x9000: ("success", "正常終了"),
    0x6200: ("warning: state of non-volatile memory unchanged", "警告: 不揮発メモリは変更なし"),
    0x6281: ("warning: part of returned data may be corrupted", "警告: 応答データの一部が破損の可能性"),
    0x6282: (
        "warning: end of file or record reached before Le bytes",
        "警告: Le バイトを読む前にファイル終端",
    ),
    0x6283: ("selected card, security domain or application is locked", "選択したカード・SD・AP がロック中"),
    0x6284: ("warning: file control information not formatted", "警告: FCI の形式が不正"),
    0x6310: (
        "more data available (send the command again for the next part)",
        "続きのデータあり (再送で次を取得)",
    ),
    0x6400: ("execution error, memory unchanged", "実行エラー (メモリ変更なし)"),
    0x6581: ("memory failure (write failed or power lost)", "メモリ障害 (書込失敗・電源断)"),
    0x6700: ("wrong length", "長さ不正"),
    0x6800: ("functions in CLA not supported", "CLA の機能は未サポート"),
    0x6881: ("logical channel not supported", "論理チャネル未サポート"),
    0x6882: ("secure messaging not supported", "セキュアメッセージング未サポート"),
    0x6883: ("last command of the chain expected", "チェイン最後のコマンドが必要"),
    0x6884: ("command chaining not supported", "コマンドチェイン未サポート"),
    0x6900: ("command not allowed", "コマンド不許可"),
    0x6981: ("command incompatible with file structure", "ファイル構造と不整合"),
    0x6982: (
        "security status not satisfied (authentication or MAC failed)",
        "セキュリティ条件不成立 (認証・MAC 失敗)",
    ),
    0x6983: ("authentication method blocked (PIN or key blocked)", "認証方式がブロック (PIN・鍵閉塞)"),
    0x6984: ("referenced data invalidated", "参照データが無効"),
    0x6985: ("conditions of use not satisfied", "使用条件不成立"),
    0x6986: ("command not allowed (no current EF)", "コマンド不許可 (カレント EF なし)"),
    0x6987: ("expected secure messaging data objects missing", "SM データオブジェクトがない"),
    0x6988: ("incorrect secure messaging data objects", "SM データオブジェクト不正"),
    0x6999: ("applet selection failed", "AP の選択に失敗"),
    0x6A80: ("incorrect parameters in the data field", "データ部のパラメータ不正"),
    0x6A81: ("function not supported", "機能未サポート"),
    0x6A82: ("file or application not found", "ファイル・AP が見つからない"),
    0x6A83: ("record not found", "レコードが見つからない"),
    0x6A84: ("not enough memory space", "メモリ容量不足"),
    0x6A85: ("Lc inconsistent with TLV structure", "Lc と TLV 構造が不整合"),
    0x6A86: ("incorrect parameters P1-P2", "P1-P2 不正"),
    0x6A87: ("Lc inconsistent with P1-P2", "Lc と P1-P2 が不整合"),
    0x6A88: ("referenced data or key not found", "参照データ・鍵が見つからない"),
    0x6A89: ("file already exists", "ファイルが既に存在"),
    0x6A8A: ("DF name already exists", "DF 名が既に存在"),
    0x6B00: ("wrong parameters P1-P2 (offset outside the file)", "P1-P2 不正 (範囲外)"),
    0x6D00: ("instruction not supported", "命令コード未サポート"),
    0x6E00: ("class not supported", "CLA 未サポート"),
    0x6F00: ("no precise diagnosis", "原因不明のエラー"),
    0x9484: ("algorithm not supported", "アルゴリズム未サポート"),
    0x9485: ("invalid key check value", "鍵チェック値不正"),
}


def describe(sw: int) -> SWInfo:
    """Meaning of a status word in English and Japanese (falls back to its class)."""
    if sw in _EXACT:
        en, ja = _EXACT[sw]
        return SWInfo(sw, en, ja)
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return SWInfo(
            sw, f"{sw2 or 256} more response bytes available", f"応答データが残り {sw2 or 256} バイト"
        )
    if sw1 == 0x6C:
        return SWInfo(sw, f"wrong Le: exact length is {sw2 or 256}", f"Le 不正: 正しい長さは {sw2 or 256}")
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        n = sw2 & 0x0F
        return SWInfo(sw, f"verification failed, {n} tries left", f"照合失敗 (残り {n} 回)")
    if sw1 in (0x62, 0x63):
        return SWInfo(sw, "warning", "警告")
    if sw1 in (0x64, 0x65, 0x66):
        return SWInfo(sw, "execution error", "実行エラー")
    if sw1 in (0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6D, 0x6E, 0x6F):
        return SWInfo(sw, "checking error", "検査エラー")
    return SWInfo(sw, "unknown status word", "不明なステータスワード")


class CardError(Exception):
    """The card answered a status word the caller did not expect."""

    def __init__(self, sw: int, *, command: str = "", data: bytes = b"") -> None:
        self.sw = sw
        self.command = command
        self.data = data
        self.info = describe(sw)
        where = f"{command}: " if command else ""
        super().__init__(f"{where}SW {sw:04X} {self.info.en} / {self.info.ja}")

    @property
    def en(self) -> str:
        return self.info.en

    @property
    def ja(self) -> str:
        return self.info.ja
