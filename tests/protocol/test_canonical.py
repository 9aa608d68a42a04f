"""canonical_json writes exactly RFC 8785's bytes, on its fast path and off it; parse_json_strict
refuses exactly what a per-object duplicate check refuses, on its fast path and off it.

Tickets are signed over, and log leaves hashed from, these bytes: a fast path that wrote one
byte differently from the rfc8785 package would make signatures and log roots depend on which
path ran. Each case is checked against rfc8785 itself. Likewise a parse that let one duplicate
member through would let two readers of one signed ticket see different claims (I-JSON, RFC
7493 §2.3): each parse is checked against the standard library's parser with every object's
members checked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from callproof.errors import InputError
from callproof.protocol.canonical import canonical_json, parse_json_strict

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


# --- parse_json_strict -----------------------------------------------------------------------


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member names")
    return dict(pairs)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def reference_parse(text: str) -> Any:
    """The strict parse spelled out with the standard library alone: every object's members
    checked, NaN and Infinity refused."""
    try:
        return json.loads(text, object_pairs_hook=_pairs_without_duplicates,
                          parse_constant=_refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def same_parse(text: str) -> None:
    """parse_json_strict gives the reference's value (the same repr: 1, 1.0 and True differ),
    or refuses with ValueError when the reference does, for the text and its UTF-8 bytes."""
    try:
        expected = reference_parse(text)
    except ValueError:
        for data in (text, text.encode("utf-8", "surrogatepass")):
            with pytest.raises(ValueError):
                parse_json_strict(data)
        return
    assert repr(parse_json_strict(text)) == repr(expected)
    assert repr(parse_json_strict(text.encode("utf-8"))) == repr(expected)


@pytest.mark.parametrize("text", [
    '{"a":1,"a":2}', '{"a":{"b":1,"b":2}}', '{"a":[{"b":1,"b":2}]}', '{"a":1,"\\u0061":2}',
    '{"a":{"b":{"c":1,"c":1}}}', '{"a":"x:y","a":1}', '{"a":"{","a":1}', ' {"a":1,"a":2}',
    '{"a":1,"a":2} ', '{"a" : 1, "a" : 2}', '[{"a":1,"a":2}]', '{"a":1,"b":{},"a":{}}',
], ids=["top", "member-object", "object-in-array", "escaped-name", "deeper", "colon-in-string",
        "brace-in-string", "leading-space", "trailing-space", "spaced", "array-top",
        "empty-objects"])
def test_duplicate_members_are_refused_wherever_they_are(text: str) -> None:
    with pytest.raises(ValueError):
        reference_parse(text)
    same_parse(text)


@pytest.mark.parametrize("text", [
    '{"iss":"https://shop.example","agt":{"id":"a:1","name":"{ Mei }"}}', '{"a":{}}', '{}',
    '{"a":[{"b":1},{"b":2}]}', '{"a":[{}],"b":{"c":{}}}', ' {"a":1} ', '{"\\u003a":":"}',
    '"text"', '[1,2]', '3', '{"a":NaN}', '{"a":1}x', '{"a":1', '', '{"a":[' * 100_000,
], ids=["colons-and-braces-in-strings", "empty-member", "empty", "objects-in-array",
        "empty-objects-deeper", "spaces", "escaped-colon", "string", "array", "number", "nan",
        "trailing-text", "unclosed", "nothing", "too-deep"])
def test_what_has_no_duplicate_parses_as_the_reference_does(text: str) -> None:
    same_parse(text)


# JSON texts written member by member, so that duplicate names (also spelled with escapes), and
# ":" and "{" inside strings, are common rather than one draw in millions.
_names = st.sampled_from(['"a"', '"b"', '"c"', '"\\u0061"', '"é"', '""'])
_plain = st.sampled_from(['1', '-0.5', '1.0', 'true', 'null', '"x"', '"é"', '[]', '["a",2]'])
_tricky = st.sampled_from(['"x:y"', '"{}"', '"\\u003a"', 'NaN', '1e400', '{}', '[{}]'])


def _objects(names: st.SearchStrategy[str],
             values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    member = st.tuples(names, st.sampled_from(["", " "]), values)
    return st.lists(member, max_size=5).map(
        lambda members: "{" + ",".join(f"{k}:{s}{v}" for k, s, v in members) + "}")


_json_texts = st.recursive(
    _plain | _tricky,
    lambda inner: _objects(_names | st.sampled_from(['":"', '"{"']), inner)
    | st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
    max_leaves=12)
# What tickets, headers and log events are: an object whose values are plain or objects of
# plain values. Most of these get past the parse to the duplicate count, many with a duplicate.
_shallow_objects = _objects(_names, _plain | _objects(_names, _plain))


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["", " ", "\n"]), _json_texts, st.sampled_from(["", " ", "x"]))
def test_any_json_text_parses_or_is_refused_as_the_reference_does(before: str, text: str,
                                                                   after: str) -> None:
    same_parse(before + text + after)


@settings(max_examples=1000, deadline=None)
@given(_shallow_objects)
def test_any_shallow_object_parses_or_is_refused_as_the_reference_does(text: str) -> None:
    same_parse(text)


@settings(max_examples=300, deadline=None)
@given(json_values.filter(lambda v: isinstance(v, dict)))
def test_any_canonical_object_parses_as_the_reference_does(value: dict[str, Any]) -> None:
    try:
        data = canonical_json(value)
    except InputError:  # lone surrogates in generated text
        return
    same_parse(data.decode("utf-8"))
