"""PRC resident identity numbers (居民身份证号码), GB 11643-1999.

Eighteen characters: a six-digit address code, the birth date as YYYYMMDD, a
three-digit sequence number and a check character. The check character is
ISO 7064 MOD 11-2 over the first seventeen digits: each digit is weighted by
2^(17-i) mod 11, and the weighted sum mod 11 picks one of "10X98765432".

Only the canonical form is accepted: digits and an upper-case X. The tablet
upper-cases what a worker types before it saves; the server does not guess.
"""

from __future__ import annotations

from datetime import date

__all__ = ["PROBLEMS", "check_digit", "resident_id_problem", "resident_id_error", "mask_resident_id"]

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")


def check_digit(first17: str) -> str:
    """The check character for seventeen digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


# Why a number is wrong, by code: the tablet shows its own words for each code, the server these.
PROBLEMS = {
    "length": "must have 18 characters",
    "digits": "the first 17 characters must be digits",
    "last_character": "the last character must be a digit or an upper-case X",
    "address_code": "the address code (first 6 digits) cannot start with 0",
    "birth_date": "characters 7-14 must be a birth date (YYYYMMDD)",
    "check_character": "the check character does not match (GB 11643); please check the number for a typo",
}


def resident_id_problem(text: str) -> str | None:
    """The code (a key of PROBLEMS) of what is wrong with ``text``, or None when it is a valid number."""
    if len(text) != 18:
        return "length"
    body, last = text[:17], text[17]
    if not set(body) <= _DIGITS:
        return "digits"
    if last not in _DIGITS and last != "X":
        return "last_character"
    if body[0] == "0":
        return "address_code"
    try:
        date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return "birth_date"
    if check_digit(body) != last:
        return "check_character"
    return None


def resident_id_error(text: str) -> str | None:
    """Why ``text`` is not a valid 18-character resident ID number, in English; None when it is."""
    problem = resident_id_problem(text)
    if problem is None:
        return None
    if problem == "length":
        return f"must have 18 characters, not {len(text)}"
    if problem == "birth_date":
        return f"characters 7-14 must be a birth date (YYYYMMDD), not {text[6:14]}"
    return PROBLEMS[problem]


def mask_resident_id(text: str | None) -> str | None:
    """The form shown to those who may not see the number: 4401**********123X.

    The first four characters (province and city) and the last four stay; a value too
    short to mask that way is masked whole.
    """
    if text is None:
        return None
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]
