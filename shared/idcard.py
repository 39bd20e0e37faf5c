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

__all__ = ["check_digit", "resident_id_error", "mask_resident_id"]

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")


def check_digit(first17: str) -> str:
    """The check character for seventeen digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def resident_id_error(text: str) -> str | None:
    """Why ``text`` is not a valid 18-character resident ID number, or None when it is."""
    if len(text) != 18:
        return f"must have 18 characters, not {len(text)}"
    body, last = text[:17], text[17]
    if not set(body) <= _DIGITS:
        return "the first 17 characters must be digits"
    if last not in _DIGITS and last != "X":
        return "the last character must be a digit or an upper-case X"
    if body[0] == "0":
        return "the address code (first 6 digits) cannot start with 0"
    try:
        date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return f"characters 7-14 must be a birth date (YYYYMMDD), not {body[6:14]}"
    if check_digit(body) != last:
        return "the check character does not match (GB 11643); please check the number for a typo"
    return None


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
