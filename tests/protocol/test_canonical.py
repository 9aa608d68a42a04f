"""canonical_json writes exactly RFC 8785's bytes, on its fast path and off it.

Tickets are signed over, and log leaves hashed from, these bytes: a fast path that wrote one
byte differently from the rfc8785 package would make signatures and log roots depend on which
path ran. Each case is checked against rfc8785 itself.
"""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from callproof.errors import InputError
from callproof.protocol.canonical import canonical_json

EDGE_STRINGS = [
    "", "plain", 'quote " and \\ backslash', "\b\f\n\r\t", "\x00\x01\x1f", "\x7f", "\u2028\u2029",
    "é 中文 客服", "😀 \U0010ffff", "\ufeff", "</script>", "\ue000\uffff",
]


def same(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("text", EDGE_STRINGS)
def test_strings_and_keys_with_escapes_and_non_ascii_match_rfc8785(text: str) -> None:
    same(text)
    same({"k": text, "list": [text, 1, None, True, False]})
    # non-ASCII keys: in UTF-16 order
    same({text: 1, "a": 2, "\u00e9": 3, "\U0001f600": 4, "\ue000": 5})


def test_ticket_shaped_claims_match_rfc8785() -> None:
    same({"iss": "shop.example", "jti": "t-1", "iat": 1764900000, "exp": 1764900900,
          "agt": {"id": "a-001", "name": "林美 Mei"}, "rsn": "payment_failed", "mth": ["code"],
          "cdh": "A" * 43, "dep": "客服", "dst": "4712"})


def test_integer_limits_and_floats_match_rfc8785_or_refuse() -> None:
    for n in (0, -1, 2**53 - 1, -(2**53) + 1):
        same({"n": n})
    for bad in (2**53, -(2**53), float("nan"), float("inf")):
        with pytest.raises(InputError):
            canonical_json({"n": bad})
    for f in (0.5, 1e21, -0.0, 1e-7, 123.0):
        same({"f": f, "nested": [f]})


def test_what_json_cannot_carry_exactly_is_refused() -> None:
    for bad in ({1: "int key"}, {"s": "\ud800"}, {"\udfff": 1}, {"b": b"bytes"}):
        with pytest.raises(InputError):
            canonical_json(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_matches_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:  # lone surrogates in generated text
        with pytest.raises(InputError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
