"""User numbers (R3.5): never an individual number nor a resident record code."""

import pytest

from cardap.usernumber import (
    UserNumberError,
    check_declaration,
    generate_user_number,
    individual_number_check_digit,
    is_individual_number,
    validate_user_number,
)

# Check digits worked out by hand with the published formula (P_n = n-th digit from the right of
# the first 11, Q_n = n+1 for n<=6 and n-5 for n>=7, r = sum(P*Q) mod 11, digit = 0 if r<=1 else 11-r):
#   12345678901: P = 1,0,9,8,7,6,5,4,3,2,1 ; Q = 2,3,4,5,6,7,2,3,4,5,6
#                sum = 2+0+36+40+42+42+10+12+12+10+6 = 212 ; 212 mod 11 = 3 -> 11-3 = 8
#   00000000001: sum = 1*2 = 2 -> r = 2 -> 9
#   10000000000: only P11 = 1, Q11 = 6 -> sum 6 -> 5
#   00000000040: only P2 = 4, Q2 = 3 -> sum 12 -> r = 1 -> 0
HAND_COMPUTED = [("12345678901", 8), ("00000000001", 9), ("10000000000", 5), ("00000000040", 0)]


@pytest.mark.parametrize("first11,digit", HAND_COMPUTED)
def test_check_digit_matches_hand_computation(first11, digit):
    assert individual_number_check_digit(first11) == digit
    assert is_individual_number(first11 + str(digit))
    assert not is_individual_number(first11 + str((digit + 1) % 10))


@pytest.mark.parametrize("value", ["123456789018", "1234-5678-9018", "1234 5678 9018", "000000000019"])
def test_individual_number_refused_even_with_separators(value):
    with pytest.raises(UserNumberError) as exc:
        validate_user_number(
            value, length=20, charset="alphanumeric" if "-" in value or " " in value else "digits"
        )
    assert exc.value.code == "individual_number"


def test_twelve_digits_with_wrong_check_digit_is_a_plain_user_number():
    assert validate_user_number("123456789017", length=12, charset="digits") == "123456789017"


@pytest.mark.parametrize("value", ["12345678901", "123-4567-8901"])
def test_resident_record_code_pattern_refused(value):
    with pytest.raises(UserNumberError) as exc:
        validate_user_number(value, length=16, charset="alphanumeric")
    assert exc.value.code == "resident_record_code"


def test_length_and_charset_errors_are_precise():
    with pytest.raises(UserNumberError, match="8文字以内です（9文字）") as exc:
        validate_user_number("123456789", length=8, charset="digits")
    assert exc.value.code == "too_long"
    with pytest.raises(UserNumberError, match="'a'") as exc:
        validate_user_number("AB12a", length=8, charset="alphanumeric")
    assert exc.value.code == "charset"
    with pytest.raises(UserNumberError) as exc:
        validate_user_number("", length=8, charset="digits")
    assert exc.value.code == "empty"


def test_declaration_of_eleven_digits_refused():
    with pytest.raises(UserNumberError) as exc:
        check_declaration(length=11, charset="digits")
    assert exc.value.code == "declared_resident_record_code"
    check_declaration(length=11, charset="alphanumeric")


def test_generated_numbers_are_valid_and_never_individual_numbers():
    for _ in range(300):  # about 1 in 11 random 12-digit strings carries a valid check digit
        value = generate_user_number(length=12, charset="digits")
        assert len(value) == 12 and value.isdigit() and not is_individual_number(value)


@pytest.mark.django_db
def test_user_number_for_an_ap(world):
    from django.core.exceptions import ValidationError

    from cardap.services import user_number_for
    from tests import factories

    generated = factories.card_ap(world.shop, "生成AP")
    value = user_number_for(generated)
    assert len(value) == 16 and value.isdigit()
    with pytest.raises(ValidationError, match="システムが生成"):
        user_number_for(generated, "1234")
    supplied = factories.card_ap(world.shop, "指定AP")
    supplied.user_number_source, supplied.user_number_length = "supplied", 12
    assert user_number_for(supplied, "000000000123") == "000000000123"
    with pytest.raises(UserNumberError) as exc:
        user_number_for(supplied, "123456789018")  # a valid individual number (worked out above)
    assert exc.value.code == "individual_number"
    with pytest.raises(ValidationError, match="指定が必要"):
        user_number_for(supplied)
