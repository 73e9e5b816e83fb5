"""The user number a card AP holds (R3.5): generated or supplied, and never a 12-digit individual
number (個人番号) or an 11-digit resident record code (住民票コード).

`validate_user_number` is the single check every path uses (registration, loading).
"""

from __future__ import annotations

import re
import secrets
import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

DIGITS = "digits"
ALPHANUMERIC = "alphanumeric"
CHARSETS = {DIGITS: string.digits, ALPHANUMERIC: string.ascii_uppercase + string.digits}
MAX_LENGTH = 64  # CardAPInstallation.user_number
# Separators people type inside numbers; a number hidden behind them is still that number.
_SEPARATORS = re.compile(r"[\s\-‐－ー―_./]")


def individual_number_check_digit(first11: str) -> int:
    """Check digit of a 12-digit individual number from its first 11 digits.

    Public formula: 通知カード及び個人番号カード並びに情報提供ネットワークシステムによる特定個人情報の
    提供等に関する省令（平成26年総務省令第85号）第5条: with P_n the n-th digit counted from the
    right of the 11 digits and Q_n = n + 1 (1 ≤ n ≤ 6), n − 5 (7 ≤ n ≤ 11), let
    r = Σ P_n × Q_n mod 11; the check digit is 0 when r ≤ 1, otherwise 11 − r.
    """
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError("need exactly 11 digits")
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def is_individual_number(value: str) -> bool:
    """True when `value` (separators ignored) is 12 digits whose last is the valid check digit."""
    digits = _SEPARATORS.sub("", value)
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    return individual_number_check_digit(digits[:11]) == int(digits[11])


def looks_like_resident_record_code(value: str) -> bool:
    """True for any 11 digits (separators ignored): the 住民票コード pattern. Refused outright; a
    false refusal costs a re-numbering, a false acceptance would store the code."""
    digits = _SEPARATORS.sub("", value)
    return len(digits) == 11 and digits.isascii() and digits.isdigit()


class UserNumberError(ValidationError):
    pass


def validate_user_number(value: str, *, length: int, charset: str) -> str:
    """Return `value` if it is an acceptable user number for an AP declaring `length` characters
    (at most) of `charset`; raise UserNumberError (code says which rule) otherwise."""
    if charset not in CHARSETS:
        raise ValueError(f"unknown charset {charset!r}")
    if not value:
        raise UserNumberError(_("利用者番号が空です。"), code="empty")
    if is_individual_number(value):
        raise UserNumberError(_("利用者番号に個人番号（12桁）は使用できません。"), code="individual_number")
    if looks_like_resident_record_code(value):
        raise UserNumberError(
            _("利用者番号に住民票コード（11桁の数字）の形式は使用できません。"), code="resident_record_code"
        )
    if len(value) > length:
        raise UserNumberError(
            _("利用者番号は%(length)d文字以内です（%(actual)d文字）。"),
            code="too_long",
            params={"length": length, "actual": len(value)},
        )
    allowed = CHARSETS[charset]
    bad = sorted({c for c in value if c not in allowed})
    if bad:
        raise UserNumberError(
            _("利用者番号に使用できない文字があります: %(chars)s（使用可能: %(charset)s）"),
            code="charset",
            params={"chars": " ".join(repr(c) for c in bad), "charset": _charset_label(charset)},
        )
    return value


def _charset_label(charset: str) -> str:
    return str(_("数字") if charset == DIGITS else _("英大文字・数字"))


def check_declaration(*, length: int, charset: str) -> None:
    """Refuse a user number format that could only ever hold forbidden values."""
    if not 1 <= length <= MAX_LENGTH:
        raise UserNumberError(
            _("利用者番号の桁数は1〜%(max)d です。"), code="declared_length", params={"max": MAX_LENGTH}
        )
    if charset == DIGITS and length == 11:
        raise UserNumberError(
            _("11桁の数字は住民票コードと同じ形式のため、利用者番号の形式として使用できません。"),
            code="declared_resident_record_code",
        )


def generate_user_number(*, length: int, charset: str) -> str:
    """A random user number of exactly `length` characters that passes validate_user_number."""
    check_declaration(length=length, charset=charset)
    alphabet = CHARSETS[charset]
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            return validate_user_number(candidate, length=length, charset=charset)
        except UserNumberError:
            continue  # e.g. 12 random digits that happen to carry a valid check digit
