"""Call codes: 8 random digits and a Damm check digit, shown as three groups of three.

A customer types the code, often on a phone keyboard, sometimes in full-width digits or with
spaces, dashes and dots. :func:`normalise_code` accepts those, refuses anything else with a
reason, and tells a mistyped code (wrong check digit) apart before any lookup is made.

    >>> code = new_code()                  # '482917360'
    >>> display_code(code)                 # '482 917 360'
    >>> normalise_code("４８２-９１７ ３６５") == code
    True
"""

from __future__ import annotations

import secrets
import unicodedata

from callproof.errors import CodeFormatError, CodeTypo

CODE_DIGITS = 9
#: Longest input we look at; anything longer is refused unread.
MAX_INPUT_CHARS = 64

# Damm's totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004): catches every
# single-digit error and every adjacent transposition.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# Separators people type between groups (after NFKC, which folds full-width forms).
_SEPARATORS = frozenset("-.·‐‑‒–—―−。・、,_/")


def damm_digit(digits: str) -> str:
    """The Damm check digit of an ASCII digit string."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return str(interim)


def damm_valid(digits: str) -> bool:
    return damm_digit(digits) == "0"


def new_code() -> str:
    """A fresh code: 8 digits from ``secrets`` plus the Damm check digit."""
    body = f"{secrets.randbelow(10**8):08d}"
    return body + damm_digit(body)


def display_code(code: str) -> str:
    """Three groups of three, as the agent reads it: ``'482 917 360'``."""
    return f"{code[0:3]} {code[3:6]} {code[6:9]}"


def normalise_code(text: str) -> str:
    """Return the 9 ASCII digits of a typed call code.

    Raises :class:`CodeFormatError` for characters other than digits, spaces and separators, or
    a count of digits other than nine; :class:`CodeTypo` when the check digit does not match.
    """
    if len(text) > MAX_INPUT_CHARS:
        raise CodeFormatError("a call code has 9 digits; this is far too long")
    digits = []
    for ch in unicodedata.normalize("NFKC", text):
        if "0" <= ch <= "9":
            digits.append(ch)
        elif not (ch.isspace() or ch in _SEPARATORS):
            raise CodeFormatError("a call code has digits only")
    if len(digits) != CODE_DIGITS:
        raise CodeFormatError(f"a call code has 9 digits; this has {len(digits)}")
    code = "".join(digits)
    if not damm_valid(code):
        raise CodeTypo()
    return code
