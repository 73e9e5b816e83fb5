"""Status word meanings (ISO/IEC 7816-4 Table 5-6 and GPC 2.3 §11.1.3) in English and Japanese."""

from __future__ import annotations

import pytest

from gpcard.sw import CardError, describe


@pytest.mark.parametrize(
    ("sw", "en", "ja"),
    [
        (0x9000, "success", "正常"),
        (0x6A84, "not enough memory", "メモリ容量不足"),
        (0x6982, "security status not satisfied", "セキュリティ条件"),
        (0x6983, "blocked", "ブロック"),
        (0x6310, "more data", "続き"),
        (0x63C2, "2 tries left", "残り 2 回"),
        (0x6C10, "exact length is 16", "16"),
        (0x6104, "4 more response bytes", "4 バイト"),
        (0x6A99, "checking error", "検査エラー"),
        (0x1234, "unknown", "不明"),
    ],
)
def test_meanings(sw: int, en: str, ja: str) -> None:
    info = describe(sw)
    assert en in info.en and ja in info.ja and info.hex == f"{sw:04X}"


def test_every_status_word_the_protocol_relies_on_is_named() -> None:
    # docs/card-protocol.md "Status words the server relies on"
    for sw in (
        0x9000,
        0x6310,
        0x63C3,
        0x6581,
        0x6700,
        0x6982,
        0x6983,
        0x6985,
        0x6A80,
        0x6A82,
        0x6A84,
        0x6A86,
        0x6A88,
        0x6D00,
        0x6E00,
        0x6283,
    ):
        info = describe(sw)
        assert info.en not in ("warning", "checking error", "unknown status word"), f"{sw:04X}"


def test_card_error_carries_both_languages() -> None:
    err = CardError(0x6A84, command="INSTALL [for install]")
    assert err.sw == 0x6A84
    assert "6A84" in str(err) and "not enough memory" in str(err) and "メモリ容量不足" in str(err)
    assert err.en.startswith("not enough") and err.ja == "メモリ容量不足"
