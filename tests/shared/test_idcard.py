"""Resident ID numbers: GB 11643's check character, against a table and by law."""

import pytest
from hypothesis import given, strategies as st

from shared.idcard import check_digit, mask_resident_id, resident_id_error
from shared.records import ValidationError, load_change

VALID = [
    "11010519491231002X",  # the example printed in many guides, X as check character
    "440524188001010014",  # GB 11643's own example
    "110101199003074514",
]

INVALID = [
    ("11010519491231002x", "upper-case X"),  # lower-case x is not canonical
    ("110105194912310021", "check character"),  # one off
    ("110105194912310020", "check character"),
    ("320311770706001", "18 characters"),  # the old 15-digit form
    ("1101051949123100200", "18 characters"),
    ("", "18 characters"),
    ("11010519491331002X", "birth date"),  # month 13
    ("11010519490229002X", "birth date"),  # 1949 is no leap year
    ("1101051949123A002X", "17 characters must be digits"),
    ("01010519491231002X", "cannot start with 0"),
    ("11010519491231002Y", "last character"),
    ("１１０１０５１９４９１２３１００２X", "17 characters must be digits"),  # full-width digits
]


@pytest.mark.parametrize("number", VALID)
def test_valid_numbers_pass(number):
    assert resident_id_error(number) is None


@pytest.mark.parametrize("number, reason", INVALID)
def test_invalid_numbers_say_why(number, reason):
    error = resident_id_error(number)
    assert error is not None and reason in error


@given(st.text(alphabet="0123456789", min_size=17, max_size=17).filter(lambda s: s[0] != "0"),
       st.dates())
def test_exactly_one_check_character_is_right(digits, born):
    body = digits[:6] + born.strftime("%Y%m%d") + digits[14:]
    if born.year < 1000:
        return
    right = check_digit(body)
    assert resident_id_error(body + right) is None
    for wrong in set("0123456789X") - {right}:
        assert "check character" in resident_id_error(body + wrong)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17), st.integers(0, 16),
       st.integers(1, 9))
def test_any_single_digit_typo_is_caught(body, position, shift):
    number = body + check_digit(body)
    typo = body[:position] + str((int(body[position]) + shift) % 10) + body[position + 1:]
    assert check_digit(typo) != number[-1]


def test_masking_keeps_four_and_four():
    assert mask_resident_id("44010619900307123X") == "4401**********123X"
    assert mask_resident_id("1234") == "****"
    assert mask_resident_id(None) is None


def _tenant(id_number):
    hlc = "2026-11-27T10:00:00.000Z-0000-00000000000000a1"
    return {"kind": "tenant", "id": "0192f0e1-0000-7000-8000-000000000001", "bucket": "grid:G-0101",
            "fields": {"house": ["0192f0e1-0000-7000-8000-000000000002", hlc], "name": ["张三", hlc],
                       "id_number": [id_number, hlc]}}


def test_the_wire_refuses_a_bad_number_and_names_the_field():
    load_change(_tenant("11010519491231002X"))
    with pytest.raises(ValidationError) as caught:
        load_change(_tenant("110105194912310021"))
    assert "id_number" in str(caught.value.messages) and "check character" in str(caught.value.messages)


@pytest.mark.parametrize("number, _reason", INVALID)
def test_every_problem_has_a_code_and_words(number, _reason):
    from shared.idcard import PROBLEMS, resident_id_problem

    assert resident_id_problem(number) in PROBLEMS
