"""The phrase rules: NFKC, 4–64 characters, not only digits, nothing like a card number."""

from __future__ import annotations

import pytest

from callproof.errors import PhraseRefused
from callproof.proofs.phrase import luhn_ok, normalise_phrase


@pytest.mark.parametrize(("typed", "stored"), [
    ("  Ｂｌｕｅ   heron ", "Blue heron"),
    ("ﬁsh pond", "fish pond"),
    ("西瓜與月亮", "西瓜與月亮"),
    ("room 42 at dawn", "room 42 at dawn"),
    ("x" * 64, "x" * 64),
    ("abcd", "abcd"),
])
def test_accepted_phrases_are_normalised(typed: str, stored: str) -> None:
    assert normalise_phrase(typed) == stored


@pytest.mark.parametrize(("typed", "reason", "says"), [
    ("abc", "phrase_too_short", "too short: use at least 4 characters"),
    ("  a  ", "phrase_too_short", "too short"),
    ("x" * 65, "phrase_too_long", "too long: use at most 64 characters"),
    ("12345678", "phrase_all_digits", "must not be only digits"),
    ("１２３４", "phrase_all_digits", "must not be only digits"),
    ("12-34 56", "phrase_all_digits", "must not be only digits"),
    ("4111 1111 1111 1111", "phrase_card_like", "looks like a card number"),
    ("4111-1111-1111-1111", "phrase_card_like", "looks like a card number"),
    ("1234567890123", "phrase_card_like", "looks like a card number"),
    ("my card 4539 1488 0343 6467 ok", "phrase_card_like", "looks like a card number"),
    ("code 100000000008 here", "phrase_card_like", "looks like a card number"),
    ("tab\x07bell", "phrase_unprintable", "control characters"),
])
def test_each_rule_refuses_with_a_clear_message(typed: str, reason: str, says: str) -> None:
    with pytest.raises(PhraseRefused) as e:
        normalise_phrase(typed)
    assert e.value.reason == reason
    assert says in str(e.value)
    assert typed.strip() not in str(e.value) or len(typed.strip()) < 4  # never echoes it


def test_twelve_digits_failing_luhn_are_only_refused_when_all_digits() -> None:
    assert not luhn_ok("100000000001")
    assert normalise_phrase("code 100000000001 x") == "code 100000000001 x"


def test_luhn() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
