"""Call codes: how they are made, shown, typed and checked (spec §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callproof.errors import CodeFormatError, CodeTypo
from callproof.protocol.codes import damm_digit, damm_valid, display_code, new_code, normalise_code

GOOD = "482917360"  # 48291736 + its Damm digit 0


def test_damm_published_example() -> None:
    assert damm_digit("572") == "4"
    assert damm_valid("5724")
    assert not damm_valid("5742")


def test_good_fixture_is_valid() -> None:
    assert damm_valid(GOOD)


def test_new_codes_are_nine_digits_with_a_valid_check_digit() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1990  # random, not a counter
    for code in codes:
        assert len(code) == 9 and code.isascii() and code.isdigit() and damm_valid(code)


def test_display_is_three_groups_of_three() -> None:
    assert display_code(GOOD) == "482 917 360"


@pytest.mark.parametrize("typed", [
    "482917360", "482 917 360", "482-917-360", "482.917.360", " 482 917 360 ",
    "４８２９１７３６０", "４８２　９１７　３６０", "482－917－360", "482\t917\n360", "482·917·360",
    "482 ９１７-360",
], ids=["plain", "spaces", "dashes", "dots", "padded", "fullwidth", "ideographic-space",
        "fullwidth-dash", "tabs-newlines", "middle-dot", "mixed"])
def test_messy_but_honest_input_is_accepted(typed: str) -> None:
    assert normalise_code(typed) == GOOD


@pytest.mark.parametrize("typed", [
    "", "48291736", "4829173600", "482917a65", "482+917+360", "CODE 482917360",
    "٤٨٢٩١٧٣٦٥", "x" * 500, "482917360;DROP", "💯482917360",
], ids=["empty", "eight-digits", "ten-digits", "letter", "plus", "words", "arabic-indic",
        "huge", "injection", "emoji"])
def test_anything_else_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(CodeFormatError) as caught:
        normalise_code(typed)
    assert caught.value.reason == "format"
    assert str(caught.value)


def test_a_mistyped_digit_is_a_typo_not_a_lookup() -> None:
    with pytest.raises(CodeTypo) as caught:
        normalise_code("482917366")
    assert caught.value.reason == "typo"


@given(st.integers(0, 10**8 - 1), st.integers(0, 8), st.integers(1, 9))
def test_every_single_digit_error_is_caught(body: int, pos: int, delta: int) -> None:
    code = f"{body:08d}" + damm_digit(f"{body:08d}")
    wrong = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1:]
    with pytest.raises(CodeTypo):
        normalise_code(wrong)


@given(st.integers(0, 10**8 - 1), st.integers(0, 7))
def test_every_adjacent_transposition_is_caught(body: int, pos: int) -> None:
    code = f"{body:08d}" + damm_digit(f"{body:08d}")
    if code[pos] == code[pos + 1]:
        return
    swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2:]
    with pytest.raises(CodeTypo):
        normalise_code(swapped)


_SEPS = st.sampled_from([" ", "-", ".", "　", "－", "", "  "])


@given(st.integers(0, 10**8 - 1), st.lists(_SEPS, min_size=10, max_size=10),
       st.booleans())
def test_normalisation_round_trips_any_spacing_and_width(body: int, seps: list[str],
                                                         fullwidth: bool) -> None:
    code = f"{body:08d}" + damm_digit(f"{body:08d}")
    digits = [chr(ord(c) + 0xFEE0) if fullwidth else c for c in code]
    typed = "".join(s + d for s, d in zip(seps, digits, strict=False)) + seps[-1]
    assert normalise_code(typed) == code


@given(st.text(max_size=80))
def test_normalisation_never_crashes(text: str) -> None:
    try:
        code = normalise_code(text)
    except (CodeFormatError, CodeTypo):
        return
    assert len(code) == 9 and code.isdigit() and damm_valid(code)
