"""Signed notes, checkpoints and cosignatures: published vectors, round trips, refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from callproof.errors import NoteError
from callproof.tlog.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Checkpoint,
    Signature,
    Signer,
    Verifier,
    add_signatures,
    cosign,
    cosignature_message,
    key_id,
    open_note,
    sign_note,
    split_note,
    verify_cosignature,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "spec" / "vectors" / "notes.json").read_text("utf-8")
)
PETER = VECTORS["signed_note"]
ENOCH = VECTORS["go_two_signers"]
SUMDB = VECTORS["sumdb_checkpoint"]
COSIG = VECTORS["cosignature_example"]


# --- published vectors -----------------------------------------------------------------------


def test_peter_neumann_keys_round_trip() -> None:
    verifier = Verifier.parse(PETER["vkey"])
    signer = Signer.parse(PETER["skey"])
    assert verifier.name == signer.name == "PeterNeumann"
    assert verifier.key_id == signer.key_id == 0xC74F20A3
    assert verifier.algorithm == ALG_ED25519
    assert verifier.to_vkey() == PETER["vkey"]
    assert signer.to_skey() == PETER["skey"]
    assert signer.verifier() == verifier
    assert key_id("PeterNeumann", ALG_ED25519, verifier.public_key) == 0xC74F20A3
    assert "AYEK" not in repr(signer)  # the seed stays out of reprs


def test_peter_neumann_signature() -> None:
    note = PETER["text"] + "\n" + PETER["signature_line"] + "\n"
    # Ed25519 is deterministic: our signer writes exactly the published note.
    assert sign_note(PETER["text"], [Signer.parse(PETER["skey"])]) == note
    opened = open_note(note, [Verifier.parse(PETER["vkey"])])
    assert opened.text == PETER["text"]
    assert [v.signature.name for v in opened.verified] == ["PeterNeumann"]
    assert opened.verified[0].timestamp is None
    assert opened.unverified == ()
    assert opened.to_text() == note
    assert open_note(note.encode(), [Verifier.parse(PETER["vkey"])]).text == PETER["text"]


@pytest.mark.parametrize("case", VECTORS["rejected_vkeys"]["keys"], ids=lambda c: c["why"])
def test_rejected_vkeys(case: dict[str, str]) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(case["vkey"])


def test_c2sp_example() -> None:
    ex = VECTORS["c2sp_example"]
    verifier = Verifier.parse(ex["vkey"])
    assert verifier.key_id == 0x530D903A
    opened = open_note(ex["text"] + "\n" + ex["signature_line"] + "\n", [verifier])
    assert opened.text == "This is an example message.\n"


def test_sumdb_checkpoint() -> None:
    opened = open_note(SUMDB["note"], [Verifier.parse(SUMDB["vkey"])])
    checkpoint = Checkpoint.from_text(opened.text)
    assert checkpoint.origin == SUMDB["origin"]
    assert checkpoint.size == SUMDB["size"]
    assert checkpoint.root == base64.b64decode(SUMDB["root"])
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == opened.text
    assert opened.to_text() == SUMDB["note"]
    tampered = SUMDB["note"].replace("6476701", "6476702")
    with pytest.raises(NoteError, match="invalid"):
        open_note(tampered, [Verifier.parse(SUMDB["vkey"])])


def test_cosignature_example_framing() -> None:
    text, sigs = split_note(COSIG["note"])
    witness = sigs[1]
    assert witness.name == COSIG["witness_name"]
    assert f"{witness.key_id:08x}" == COSIG["witness_key_id"]
    assert len(witness.data) == 8 + 64
    assert int.from_bytes(witness.data[:8], "big") == COSIG["timestamp"]
    assert cosignature_message(text, COSIG["timestamp"]) == COSIG["signed_message"].encode()
    assert witness.to_line() == COSIG["note"].splitlines()[-1]
    # Neither key is published, so opening with any other key finds nothing verified.
    with pytest.raises(NoteError, match="no verified signature"):
        open_note(COSIG["note"], [Signer.generate("example.com/behind-the-sofa").verifier()])


# --- cosignatures ----------------------------------------------------------------------------


def _log_and_checkpoint() -> tuple[Signer, str, str]:
    log = Signer.generate("example.com/log")
    text = Checkpoint("example.com/log", 42, bytes(range(32)), ("ext one",)).to_text()
    return log, text, sign_note(text, [log])


def test_cosign_and_verify() -> None:
    log, text, signed = _log_and_checkpoint()
    key = Ed25519PrivateKey.generate()
    witness = Verifier.from_public_key("witness.example/w1", key.public_key(), ALG_COSIGNATURE_V1)
    assert Verifier.parse(witness.to_vkey()) == witness
    assert witness.to_vkey().split("+")[2].startswith("B")  # base64 of 0x04 ...
    cosig = cosign(text, "witness.example/w1", key, timestamp=1_700_000_123)
    assert cosig.key_id == witness.key_id
    assert verify_cosignature(text, cosig, witness) == 1_700_000_123
    assert verify_cosignature(text, cosig, witness, not_after=1_700_000_123) == 1_700_000_123
    with pytest.raises(NoteError, match="after"):
        verify_cosignature(text, cosig, witness, not_after=1_700_000_122)
    with pytest.raises(NoteError, match="not a cosignature"):
        verify_cosignature(text, cosig, log.verifier())
    with pytest.raises(NoteError, match="invalid"):
        verify_cosignature(text.replace("42", "43"), cosig, witness)

    cosigned = add_signatures(signed, [cosig])
    # A client that only knows the log keeps the cosignature unverified.
    opened = open_note(cosigned, [log.verifier()])
    assert opened.unverified == (cosig,)
    # A client that requires the witness verifies both.
    opened = open_note(cosigned, [log.verifier()], required=[witness])
    assert [v.timestamp for v in opened.verified] == [None, 1_700_000_123]
    assert opened.unverified == ()
    with pytest.raises(NoteError, match="two signatures"):
        add_signatures(cosigned, [cosig])
    other = Verifier.from_public_key(
        "witness.example/w2", Ed25519PrivateKey.generate().public_key(), ALG_COSIGNATURE_V1
    )
    with pytest.raises(NoteError, match="required key 'witness.example/w2'"):
        open_note(cosigned, [log.verifier()], required=[witness, other])


def test_cosign_refusals() -> None:
    key = Ed25519PrivateKey.generate()
    _, text, _ = _log_and_checkpoint()
    with pytest.raises(NoteError, match="at least 3"):
        cosign("not a checkpoint\n", "w", key, 1)
    with pytest.raises(NoteError, match="outside 0..2"):
        cosign(text, "w", key, 2**63)
    with pytest.raises(NoteError, match="outside 0..2"):
        cosign(text, "w", key, -1)
    with pytest.raises(NoteError, match="space"):
        cosign(text, "w 1", key, 1)
    good = cosign(text, "w", key, 5)
    witness = Verifier.from_public_key("w", key.public_key(), ALG_COSIGNATURE_V1)
    with pytest.raises(NoteError, match="expected 72"):
        verify_cosignature(text, Signature("w", good.key_id, good.data[8:]), witness)
    future = Signature("w", good.key_id, (2**63).to_bytes(8, "big") + good.data[8:])
    with pytest.raises(NoteError, match="outside"):
        verify_cosignature(text, future, witness)


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "space"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "empty"),
        ("PeterNeumann+c74f20a3", "name\\+keyid\\+key"),
        ("PeterNeumann+c74f20a3+AQ==", "1 bytes|0 bytes"),
        ("PeterNeumann+c74f20a3+", "empty"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==", "33 bytes"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
    ],
)
def test_bad_vkeys(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Verifier.parse(vkey)


@pytest.mark.parametrize(
    ("skey", "message"),
    [
        (PETER["skey"].replace("PRIVATE+KEY+", "PRIVATE+"), "PRIVATE\\+KEY"),
        (PETER["skey"].replace("c74f20a3", "c74f20a4"), "does not match"),
        (PETER["skey"].replace("+AYEK", "+AoEK"), "unknown type 0x02"),
        (PETER["skey"][:-4], "base64|bytes"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "name\\+keyid\\+key"),
    ],
)
def test_bad_skeys(skey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Signer.parse(skey)


# --- note structure --------------------------------------------------------------------------


def _signed(text: str = "hello\n") -> tuple[Signer, str]:
    signer = Signer.generate("example.com/k")
    return signer, sign_note(text, [signer])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda n: n[:-1], "end with a newline"),
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.split("\n\n")[0] + "\n\n", "no signatures"),
        (lambda n: n.replace("\u2014 ", "- "), "does not start with"),
        (lambda n: n.replace("example.com/k ", "example.com/k"), "no signature after"),
        (lambda n: n.replace("example.com/k", "example.com+k"), "space or '\\+'"),
        (lambda n: n.replace("hello", "hel\rlo"), "control character"),
        (lambda n: n.replace("hello", "hel\tlo"), "control character"),
        (lambda n: n[:-2] + "?\n", "base64"),
        (lambda n: n.replace("hello", "hellO"), "invalid"),
        (lambda n: n.replace("hello", "x" * 70_000), "longer than"),
    ],
)
def test_malformed_notes(mutate: Any, message: str) -> None:
    signer, note = _signed()
    with pytest.raises(NoteError, match=message):
        open_note(mutate(note), [signer.verifier()])


def test_note_refusals() -> None:
    signer, note = _signed()
    v = signer.verifier()
    with pytest.raises(NoteError, match="no verified signature"):
        open_note(note, [Signer.generate("example.com/other").verifier()])
    with pytest.raises(NoteError, match="not valid UTF-8"):
        open_note(b"\xff\n\n" + note.split("\n\n")[1].encode(), [v])
    with pytest.raises(NoteError, match="too short"):
        open_note("hello\n\n\u2014 example.com/k AAAAAA==\n", [v])
    with pytest.raises(NoteError, match="more than 2"):
        open_note(
            add_signatures(note, [Signature(f"n{i}", i, b"x") for i in range(2)]),
            [v],
            max_signatures=2,
        )
    with pytest.raises(NoteError, match="two different verifier keys"):
        open_note(note, [v, _collide(v)])
    # a signature with the right name but another key ID is someone else's: ignored
    stranger = Signature("example.com/k", signer.key_id ^ 1, bytes(64))
    opened = open_note(add_signatures(note, [stranger]), [v])
    assert opened.unverified == (stranger,)


def _collide(v: Verifier) -> Verifier:
    """A verifier object sharing name and key ID with ``v`` but another key (bypassing checks)."""
    other = object.__new__(Verifier)
    for name, value in (
        ("name", v.name),
        ("key_id", v.key_id),
        ("public_key", bytes(32)),
        ("algorithm", v.algorithm),
    ):
        object.__setattr__(other, name, value)
    return other


def test_sign_note_refusals() -> None:
    signer = Signer.generate("example.com/k")
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("hello", [signer])
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("hello\n", [])
    with pytest.raises(NoteError, match="two signatures"):
        sign_note("hello\n", [signer, signer])
    with pytest.raises(NoteError, match="control character"):
        sign_note("a\x00b\n", [signer])
    with pytest.raises(NoteError, match="Unicode"):
        sign_note("\ud800\n", [signer])
    with pytest.raises(NoteError, match="space"):
        Signer.generate("a\u00a0b")


lines = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
    min_size=1,
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(lines)
def test_sign_open_round_trip(parts: list[str]) -> None:
    text = "\n".join(parts) + "\n"
    a, b = Signer.generate("a.example/1"), Signer.generate("b.example/2")
    note = sign_note(text, [a, b])
    opened = open_note(note, [b.verifier()], required=[a.verifier()])
    assert opened.text == text
    assert opened.to_text() == note
    assert len(opened.verified) == 2


# --- checkpoints -----------------------------------------------------------------------------

ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"o\n5\n{ROOT}", "newline"),
        ("o\n5\n", "at least 3"),
        (f"o\n05\n{ROOT}\n", "plain decimal"),
        (f"o\n+5\n{ROOT}\n", "plain decimal"),
        (f"o\n 5\n{ROOT}\n", "plain decimal"),
        (f"o\n\u0665\n{ROOT}\n", "plain decimal"),
        (f"o\n1_0\n{ROOT}\n", "plain decimal"),
        (f"o\n{2**64}\n{ROOT}\n", "outside"),
        (f"\n5\n{ROOT}\n", "origin is empty"),
        (f"o\n5\n{ROOT}\n\n", "extension line is empty"),
        (f"o\n5\n{ROOT[:-4]}\n", "16 bytes|24 bytes|expected 32"),
        (f"o\n5\n{ROOT[:-2]}B=\n", "canonical"),
        ("o\n5\nnot base64!\n", "base64"),
    ],
)
def test_bad_checkpoints(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.from_text(text)


def test_checkpoint_constructor_refusals() -> None:
    with pytest.raises(NoteError, match="expected 32"):
        Checkpoint("o", 1, b"short")
    with pytest.raises(NoteError, match="outside"):
        Checkpoint("o", -1, bytes(32))
    with pytest.raises(NoteError, match="newline"):
        Checkpoint("o\nx", 1, bytes(32))
    with pytest.raises(NoteError, match="empty"):
        Checkpoint("o", 1, bytes(32), ("",))


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1), max_size=3),
)
def test_checkpoint_round_trip(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert Checkpoint.from_text(cp.to_text()) == cp


# --- unknown and repeated signature lines (issue 13, item 12) ---------------------------------
# C2SP signed-note: verifiers MUST ignore signatures from unknown keys. Go's sumdb/note (the
# reference reader) parses every line with base64.StdEncoding, which does not insist that the
# unused low bits of the last character be zero, drops repeated identical lines by unknown keys
# and counts a known key once.


def _go_note(*lines: str) -> str:
    return str(PETER["text"]) + "\n" + "".join(line + "\n" for line in lines)


def _non_canonical(line: str) -> str:
    """The same signature bytes in base64 whose unused low bits are not zero."""
    head, encoded = line.rsplit(" ", 1)
    assert encoded.endswith("=") and not encoded.endswith("==")  # 68 bytes: 2 spare bits
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(encoded[-2])
    assert last & 0b11 == 0
    bumped = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last | 1]
    return f"{head} {encoded[:-2]}{bumped}="


def test_go_two_signer_note_verifies_with_either_key_or_both() -> None:
    peter, enoch = Verifier.parse(PETER["vkey"]), Verifier.parse(ENOCH["vkey"])
    note = _go_note(PETER["signature_line"], ENOCH["signature_line"])
    only_peter = open_note(note, [peter])
    assert [v.verifier for v in only_peter.verified] == [peter]
    assert [s.name for s in only_peter.unverified] == ["EnochRoot"]
    both = open_note(note, [peter, enoch])
    assert [v.verifier for v in both.verified] == [peter, enoch] and both.unverified == ()
    with pytest.raises(NoteError, match="no verified signature"):
        open_note(note, [])


def test_an_unknown_keys_line_in_non_canonical_base64_is_ignored() -> None:
    peter = Verifier.parse(PETER["vkey"])
    odd = _non_canonical(ENOCH["signature_line"])
    note = _go_note(PETER["signature_line"], odd)
    opened = open_note(note, [peter])  # Go accepts this note: so must we
    assert [v.verifier for v in opened.verified] == [peter]
    assert opened.to_text() == note  # re-assembled byte for byte, the odd line included
    text, signatures = split_note(note)
    assert signatures[1].to_line() == odd and Signature.from_line(odd) == signatures[1]
    # The same bytes however they were written: Enoch's key still verifies the odd line.
    assert [v.verifier.name for v in open_note(note, [Verifier.parse(ENOCH["vkey"])]).verified] \
        == ["EnochRoot"]


def test_a_known_keys_line_in_non_canonical_base64_verifies_as_go_does() -> None:
    peter = Verifier.parse(PETER["vkey"])
    note = _go_note(_non_canonical(ENOCH["signature_line"]))
    assert open_note(note, [Verifier.parse(ENOCH["vkey"])]).text == PETER["text"]
    with pytest.raises(NoteError, match="no verified signature"):
        open_note(note, [peter])


def test_repeated_lines_are_ignored_and_counted_once() -> None:
    peter, enoch = Verifier.parse(PETER["vkey"]), Verifier.parse(ENOCH["vkey"])
    note = _go_note(PETER["signature_line"], ENOCH["signature_line"], ENOCH["signature_line"],
                    PETER["signature_line"])
    opened = open_note(note, [peter])
    assert [v.verifier for v in opened.verified] == [peter]
    assert [s.name for s in opened.unverified] == ["EnochRoot"]  # the repeat, once
    assert opened.to_text() == note
    both = open_note(note, [peter, enoch], required=[enoch])
    assert [v.verifier for v in both.verified] == [peter, enoch]
    assert len(split_note(note)[1]) == 4


def test_a_known_keys_second_line_must_verify_too() -> None:
    """Go drops a known key's second line unread; callproof checks it: a line that claims to be
    by a trusted key and does not verify is tampering, never ignored."""
    a, b = Signer.generate("a.example/k"), Signer.generate("b.example/k")
    note = sign_note("hello\n", [a, b])
    forged = note + Signature(b.name, b.key_id, bytes(64)).to_line() + "\n"
    with pytest.raises(NoteError, match="'b.example/k' .* is invalid"):
        open_note(forged, [a.verifier(), b.verifier()])
    # For a reader who does not know b, b's lines are ignored, the bad one too.
    assert [v.verifier for v in open_note(forged, [a.verifier()]).verified] == [a.verifier()]


def test_lines_that_are_not_signature_lines_still_refuse_the_note() -> None:
    """What Go refuses, callproof refuses: a key name with a space, base64 that does not decode
    (bad alphabet, missing padding), fewer than 5 bytes, text after the signatures."""
    peter = Verifier.parse(PETER["vkey"])
    for bad in ("\u2014 Bad Name " + PETER["signature_line"].split(" ")[-1],
                ENOCH["signature_line"][:-1], ENOCH["signature_line"][:-4] + "*AB=",
                "\u2014 EnochRoot AAAA", "Unexpected line."):
        with pytest.raises(NoteError):
            open_note(_go_note(PETER["signature_line"], bad), [peter])


def test_cosignatures_may_be_repeated_but_not_forged() -> None:
    log, text, signed = _log_and_checkpoint()
    key = Ed25519PrivateKey.generate()
    witness = Verifier.from_public_key("witness.example/w1", key.public_key(), ALG_COSIGNATURE_V1)
    cosig = cosign(text, witness.name, key, timestamp=1_700_000_000)
    twice = signed + cosig.to_line() + "\n" + cosig.to_line() + "\n"
    opened = open_note(twice, [log.verifier()], required=[witness])
    assert [v.timestamp for v in opened.verified] == [None, 1_700_000_000]
    with pytest.raises(NoteError, match="two signatures"):
        add_signatures(twice, [cosig])  # adding a key that already signed is still refused
