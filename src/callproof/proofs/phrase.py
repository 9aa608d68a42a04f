"""The shared phrase: the customer's own words, which the agent says during a genuine call.

A phrase is NFKC-normalised (full-width letters and digits become ordinary ones), its runs of
white space become one space, and it must then be 4–64 characters. It is refused when it is
only digits, or looks like a card number: 13–19 digits once spaces and dashes are removed, or
any run of 12 or more digits (spaces and dashes allowed between them) that passes the Luhn check.
The setup page tells the customer to use it nowhere else.

    >>> normalise_phrase("  Ｂｌｕｅ   heron ")
    'Blue heron'
"""

from __future__ import annotations

import re
import unicodedata

from callproof.errors import PhraseRefused

MIN_LENGTH = 4
MAX_LENGTH = 64
_DIGIT_RUN = re.compile(r"\d(?:[ \-]*\d)*")


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_card(text: str) -> bool:
    compact = re.sub(r"[ \-]", "", text)
    if compact.isdecimal() and 13 <= len(compact) <= 19:
        return True
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"\D", "", run)
        if len(digits) >= 12 and digits.isascii() and luhn_ok(digits):
            return True
        if 13 <= len(digits) <= 19:
            return True
    return False


def normalise_phrase(phrase: str) -> str:
    """The phrase as stored and revealed. Raises :class:`PhraseRefused` naming the rule."""
    if not isinstance(phrase, str):
        raise PhraseRefused("the phrase must be text", reason="phrase_not_text")
    text = " ".join(unicodedata.normalize("NFKC", phrase).split())
    if not text.isprintable():
        raise PhraseRefused("the phrase must not hold control characters",
                            reason="phrase_unprintable")
    if len(text) < MIN_LENGTH:
        raise PhraseRefused(f"the phrase is too short: use at least {MIN_LENGTH} characters",
                            reason="phrase_too_short")
    if len(text) > MAX_LENGTH:
        raise PhraseRefused(f"the phrase is too long: use at most {MAX_LENGTH} characters",
                            reason="phrase_too_long")
    if looks_like_card(text):
        raise PhraseRefused("the phrase looks like a card number: never use a card number, "
                            "choose words only you would pick", reason="phrase_card_like")
    if re.sub(r"[\s\-]", "", text).isdecimal():
        raise PhraseRefused("the phrase must not be only digits: choose some words",
                            reason="phrase_all_digits")
    return text
