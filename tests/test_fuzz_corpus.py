"""Every input the fuzzers kept (fuzz/corpus/<target>/) still holds its property, without atheris.

The fuzzers (fuzz/fuzz_*.py, run in CI by fuzz/run.py) and this replay call the same
``fuzz._targets.check_<target>`` functions, so an input that once crashed the library and was kept
as ``regress-*`` fails this suite if the bug comes back. The focused tests below name each bug the
fuzzers found, as a person would meet it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from callproof.auditor import bundle
from callproof.errors import MalformedTicket
from callproof.protocol.canonical import canonical_json
from callproof.protocol.codes import normalise_code
from callproof.protocol.jws import b64url_encode
from callproof.protocol.ticket import verify_ticket
from callproof.tlog import cosign, merkle, note
from callproof.tlog import proof as tlog_proof
from callproof.tlog.proof import format_tlog_proof
from fuzz import _targets as T
from fuzz.run import MAX_LEN

CORPUS = Path(__file__).resolve().parent.parent / "fuzz" / "corpus"


def _kept() -> list[object]:
    return [pytest.param(target, path, id=f"{target}/{path.name}")
            for target in T.TARGETS for path in sorted((CORPUS / target).iterdir())]


@pytest.mark.parametrize(("target", "path"), _kept())
def test_a_kept_input_still_holds(target: str, path: Path) -> None:
    T.TARGETS[target](path.read_bytes())


def test_each_corpus_is_small_and_starts_from_real_inputs() -> None:
    for target in T.TARGETS:
        files = list((CORPUS / target).iterdir())
        assert any(p.name.startswith("seed-") for p in files), target
        assert len(files) <= 100, f"{target}: {len(files)} files; prune it (fuzz/README.md)"
        assert all(p.stat().st_size <= MAX_LEN[target] for p in files), target


def test_the_seeds_reach_the_happy_path() -> None:
    """Seeds that the library accepts: without them a fuzzer would only ever see refusals."""
    ticket = verify_ticket((CORPUS / "ticket" / "seed-valid-all-claims").read_bytes(),
                             T.TICKET_KEYS, now=T.NOW, issuer=T.ISSUER)
    assert ticket.dst == "4321" and ticket.agent_name.startswith("陳美玲")
    typed = (CORPUS / "code" / "seed-fullwidth-ideographic-space").read_bytes().decode()
    assert "４" in typed or "０" in typed
    assert len(normalise_code(typed)) == 9
    cosigned = (CORPUS / "note" / "seed-checkpoint-cosigned").read_bytes()
    good, problems = cosign.check_quorum(cosigned, T.WITNESS_VERIFIERS)
    assert len(good) == 2 and problems == []
    parts = (CORPUS / "bundle" / "seed-bundle-calls").read_bytes().split(T.SEPARATOR)
    witnesses = [note.Verifier.parse(line) for line in parts[4].decode().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in zip(T.BUNDLE_FILES, parts, strict=False):
            (Path(tmp) / name).write_bytes(content)
        report = bundle.verify_bundle(tmp, log_key=parts[3].decode().strip(),
                                      witnesses=witnesses, workers=1)
    assert report.ok, report.failures
    assert report.tickets == 2 and sorted(report.cosigned_by) == [w.name for w in witnesses]


# --- the bugs the fuzzers found -----------------------------------------------------------------


def test_a_ticket_with_a_non_ascii_character_is_malformed_not_a_crash() -> None:
    """A ticket pasted into the check page arrives as text; one character outside ASCII in its
    payload used to escape verify_ticket as a UnicodeEncodeError (a server error)."""
    token = (CORPUS / "ticket" / "seed-valid").read_text("ascii")
    head, payload, sig = token.split(".")
    for text in (f"{head}.{payload[:10]}é{payload[10:]}.{sig}", f"{head}.{payload}.{sig}\u00a0"):
        with pytest.raises(MalformedTicket):
            verify_ticket(text, T.TICKET_KEYS, now=T.NOW)
    T.check_ticket((CORPUS / "ticket" / "regress-non-ascii-payload-text").read_bytes())


def test_a_deeply_nested_ticket_header_is_malformed_not_a_crash() -> None:
    """Thousands of '[' in the header (no signature needed to get there) used to escape as a
    RecursionError, before any key was looked at."""
    token = (CORPUS / "ticket" / "regress-deep-header").read_bytes()
    with pytest.raises(MalformedTicket):
        verify_ticket(token, T.TICKET_KEYS, now=T.NOW)
    nested = b64url_encode(b'{"a":' * 1500 + b"1" + b"}" * 1500)
    with pytest.raises(MalformedTicket):
        verify_ticket(f"{nested}.e30.{'A' * 86}", T.TICKET_KEYS, now=T.NOW)


def _verify(name: str, **kw: object) -> list[str]:
    parts = (CORPUS / "bundle" / name).read_bytes().split(T.SEPARATOR)
    with tempfile.TemporaryDirectory() as tmp:
        for file, content in zip(T.BUNDLE_FILES, parts, strict=False):
            (Path(tmp) / file).write_bytes(content)
        # Without a pinned key (trusted on purpose): these regressions are about the lines.
        report = bundle.verify_bundle(tmp, workers=1, trust_bundle_key=True,
                                      **kw)  # type: ignore[arg-type]
    return [str(f) for f in report.failures]


def _line(name: str, kind: str) -> int:
    entries = (CORPUS / "bundle" / name).read_bytes().split(T.SEPARATOR)[0]
    return 1 + next(i for i, line in enumerate(entries.splitlines())
                    if json.loads(line).get("type") == kind or
                    (kind == "list" and isinstance(json.loads(line).get("type"), list)))


@pytest.mark.parametrize(("name", "kind"), [("regress-at-text", "ticket.claimed"),
                                            ("regress-at-far-future", "ticket.issued"),
                                            ("regress-type-not-text", "list")])
def test_an_event_with_a_wrong_typed_field_is_a_failure_on_its_line(name: str, kind: str) -> None:
    """An auditor's bundle whose line has ``"at":"1"``, a time past the year 9999 or a list for
    its type used to stop verify_bundle with a TypeError/ValueError: now that line is named."""
    line = _line(name, kind)
    failures = _verify(name)
    assert any(f.startswith(f"line {line}: not a callproof v1 event") for f in failures), failures


def test_a_bundle_nested_too_deep_is_reported_not_a_crash() -> None:
    assert _verify("regress-deep-line")[0].startswith("line 1: not a callproof v1 event")
    assert any(f.startswith("jwks.json: cannot be read") for f in _verify("regress-deep-jwks"))


def test_a_key_time_past_what_a_date_holds_refuses_that_key() -> None:
    failures = _verify("regress-key-time-far")
    assert "jwks.json: key 1 is refused: created_at is not epoch seconds" in failures


def test_a_tlog_proof_of_an_entry_nested_too_deep_still_verifies() -> None:
    """The entry is checked by its hash; that it is not an event must not stop the check."""
    proof = (CORPUS / "note" / "regress-deep-proof-entry").read_bytes()
    report = tlog_proof.verify_tlog_proof(proof, T.LOG_VERIFIER)
    assert report.index == 0 and report.event is None and report.entry.startswith(b"[[[")


def test_a_tlog_proof_of_an_entry_with_a_list_for_its_type_still_verifies() -> None:
    """An included entry that is JSON but not an event (its type a list) used to escape
    verify_tlog_proof as a TypeError after the proof had checked out."""
    leaves = [canonical_json({"v": 1, "type": [], "iss": "x", "at": 1, "data": {}}), b"{}"]
    hashes = [merkle.leaf_hash(b) for b in leaves]
    cp = note.Checkpoint(T.LOG_NAME, 2, merkle.root_hash(hashes))
    proof = format_tlog_proof(0, merkle.inclusion_proof(0, 2, merkle.subtree_hasher(hashes)),
                              note.sign_note(cp.to_text(), [T.LOG_SIGNER]), extra=leaves[0])
    report = tlog_proof.verify_tlog_proof(proof, T.LOG_VERIFIER)
    assert report.entry == leaves[0] and report.event is None
    T.check_note(proof.encode())
