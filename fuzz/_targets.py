"""What each fuzz target checks, as plain functions: ``check_<target>(data: bytes) -> None``.

The atheris harnesses (``fuzz/fuzz_*.py``) and the replay test (``tests/test_fuzz_corpus.py``)
call the same functions. Each one feeds ``data`` to the library's entry points the way a
stranger's input reaches them and checks a property, not only "no crash":

- bad input is refused with the library's documented exception and nothing else (a
  ``TypeError``, ``KeyError``, ``IndexError``, ``UnicodeError``, ``RecursionError``,
  ``OverflowError``… escaping is a bug);
- what is accepted is well-formed (nine ASCII digits with a good check digit, a ticket that
  re-signs to the same claims, a note that re-assembles to the same bytes, a report whose
  failures point at real lines).

A check returns ``None`` when the property holds and raises otherwise (an ``AssertionError``
or the unexpected exception itself).

The keys here are fixed, public test keys derived from their labels: they sign the seed
inputs in ``fuzz/corpus`` (see ``fuzz/seeds.py``) and nothing else.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof.auditor import bundle, scan
from callproof.errors import BadClaims, CodeError, TicketError
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.codes import CODE_DIGITS, damm_valid, display_code, normalise_code
from callproof.protocol.jws import b64url_decode, split_compact
from callproof.protocol.keys import KeySet, SigningKey, TicketKey
from callproof.protocol.ticket import CallTicket, _read_header, encode_ticket, verify_ticket
from callproof.tlog import cosign, merkle, note
from callproof.tlog import proof as tlog_proof

__all__ = ["TARGETS", "check_bundle", "check_code", "check_note", "check_ticket"]

T = TypeVar("T")


def _private(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def _holds(condition: object, *why: object) -> None:
    """The property: an ``AssertionError`` (what the fuzzer reports) when it does not hold.
    Not ``assert``, which ``python -O`` would drop."""
    if not condition:
        raise AssertionError(*why)


def _refused(allowed: type[BaseException] | tuple[type[BaseException], ...],
             fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)``, or None when it raised one of the ``allowed`` exceptions.
    Any other exception propagates: that is what the fuzzer reports."""
    try:
        return fn(*args, **kwargs)
    except allowed:
        return None


# --- tickets ------------------------------------------------------------------------------------

#: The verifier's clock for every ticket check (the seed tickets are live then).
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
ISSUER = "fuzz.example"
TICKET_SIGNERS = {name: SigningKey(_private(f"callproof fuzz ticket key {name}"))
                  for name in ("active", "retired", "revoked")}


def _ticket_keys() -> KeySet:
    def key(name: str) -> TicketKey:
        return TicketKey.active(TICKET_SIGNERS[name].public_jwk(),
                                created_at=NOW - timedelta(days=30))

    return KeySet([key("active"),
                   key("retired").retire(NOW - timedelta(minutes=10)),
                   key("revoked").revoke(NOW - timedelta(days=1))])


TICKET_KEYS = _ticket_keys()
_SIGNER_BY_KID = {k.kid: k for k in TICKET_SIGNERS.values()}


def _outcome(token: str | bytes) -> CallTicket | str:
    """The verified ticket, or the spec name of the step that refused it."""
    try:
        return verify_ticket(token, TICKET_KEYS, now=NOW, issuer=ISSUER)
    except TicketError as e:
        return e.outcome


def check_ticket(data: bytes) -> None:
    """Ticket parsing and verification (spec §5): only :class:`TicketError` subclasses."""
    got = _outcome(data)
    # The same token as text (a form field or a URL): the same verdict when it is ASCII, and
    # a refusal (never another exception) when it is not.
    text = data.decode("utf-8", "replace")
    as_text = _outcome(text)
    if data.isascii():
        _holds(as_text == got, (got, as_text))
    if isinstance(got, CallTicket):
        # What verifies re-signs to a ticket with the same claims.
        signer = _SIGNER_BY_KID[got.kid or ""]
        again = verify_ticket(encode_ticket(got, signer), TICKET_KEYS, now=NOW, issuer=ISSUER)
        _holds(again == got and again.kid == got.kid)
        _holds(got.iat < got.exp and got.iss == ISSUER)
    # The unverified parse, step by step (what an app shows before it checks anything).
    parts = _refused(TicketError, split_compact, data)
    if parts is not None:
        header_b64, payload_b64, signature = parts
        _holds(len(signature) == 64)
        kid = _refused(TicketError, _read_header, header_b64)
        _holds(kid is None or isinstance(kid, str))
        claims = _refused((ValueError, UnicodeDecodeError), _json_b64, payload_b64)
        if isinstance(claims, dict):
            _refused(BadClaims, CallTicket.from_claims, claims)
    # The audit bundle's unverified peeks at a logged ticket never raise.
    _holds(scan._kid_of(text) is None or isinstance(scan._kid_of(text), str))
    scan._peek_claims(text)


def _json_b64(text: str) -> Any:
    return parse_json_strict(b64url_decode(text))


# --- call codes ---------------------------------------------------------------------------------


def _texts(data: bytes) -> list[str]:
    """``data`` as the texts a person's typing can arrive as."""
    texts = [data.decode("utf-8", "replace")]
    try:
        texts.append(data.decode("utf-8", "surrogatepass"))  # lone surrogates, as str allows
    except UnicodeDecodeError:
        pass
    if len(data) % 2 == 0:
        texts.append(data.decode("utf-16-le", "replace"))  # reaches every BMP character
    return texts


def check_code(data: bytes) -> None:
    """Code normalisation: :class:`CodeError` only; what passes is nine digits that pass."""
    for text in _texts(data):
        code = _refused(CodeError, normalise_code, text)
        if code is None:
            continue
        _holds(len(code) == CODE_DIGITS and code.isascii() and code.isdigit(), code)
        _holds(damm_valid(code))
        _holds(normalise_code(code) == code)
        _holds(normalise_code(display_code(code)) == code)


# --- signed notes and checkpoints ---------------------------------------------------------------

LOG_NAME = "fuzz.example/callproof-log"
LOG_SIGNER = note.Signer(LOG_NAME, _private("callproof fuzz log key"))
LOG_VERIFIER = LOG_SIGNER.verifier()
WITNESS_KEYS = {name: _private(f"callproof fuzz witness key {name}")
                for name in ("witness.example/w1", "witness.example/w2")}
WITNESS_VERIFIERS = [note.Verifier.from_public_key(name, key.public_key(),
                                                   note.ALG_COSIGNATURE_V1)
                     for name, key in WITNESS_KEYS.items()]
_NOTE_ERRORS = note.NoteError
_PROOF_ERRORS = (note.NoteError, merkle.ProofError)


def check_note(data: bytes) -> None:
    """C2SP notes, checkpoints, cosignatures and tlog-proofs: :class:`NoteError` (and, for a
    proof, :class:`ProofError`) only; what parses re-assembles to the same bytes."""
    text = data.decode("utf-8", "replace")
    for given in (data, text):
        split = _refused(_NOTE_ERRORS, note.split_note, given)
        if split is None:
            continue
        body, signatures = split
        _holds(note.Note(body, signatures, ()).to_text() == text)
        for s in signatures:
            _holds(note.Signature.from_line(s.to_line()) == s)
        checkpoint = _refused(_NOTE_ERRORS, note.Checkpoint.from_text, body)
        if checkpoint is not None:
            _holds(checkpoint.to_text() == body)
        for w in WITNESS_VERIFIERS:
            for s in signatures:
                if (s.name, s.key_id) == (w.name, w.key_id):
                    stamp = _refused(_NOTE_ERRORS, note.verify_cosignature, body, s, w)
                    _holds(stamp is None or 0 <= stamp <= note.MAX_TIMESTAMP)
    opened = _refused(_NOTE_ERRORS, note.open_note, data, [LOG_VERIFIER])
    if opened is not None:
        _holds(opened.verified and opened.to_text() == text)
    _refused(_NOTE_ERRORS, note.open_note, data, [LOG_VERIFIER], required=WITNESS_VERIFIERS[:1])
    quorum = _refused(_NOTE_ERRORS, cosign.check_quorum, data, WITNESS_VERIFIERS, 1)
    if quorum is not None:
        good, _ = quorum
        _holds(1 <= len(good) <= len(WITNESS_VERIFIERS))
    _refused(_NOTE_ERRORS, note.Checkpoint.from_text, text)
    first_line = text.split("\n", 1)[0]
    vkey = _refused(_NOTE_ERRORS, note.Verifier.parse, first_line)
    if vkey is not None:
        _holds(note.Verifier.parse(vkey.to_vkey()) == vkey)
    _refused(_NOTE_ERRORS, note.Signer.parse, first_line)
    # A tlog-proof wraps a signed checkpoint: the same refusals, and ProofError for the path.
    _refused(_PROOF_ERRORS, tlog_proof.parse_tlog_proof, data)
    proof = _refused(_PROOF_ERRORS, tlog_proof.verify_tlog_proof, data, LOG_VERIFIER)
    if proof is not None:
        _holds(0 <= proof.index < proof.checkpoint.size)


# --- export bundles -----------------------------------------------------------------------------

#: The files of a bundle in the order the fuzz container holds them; the container is their
#: contents joined by NUL bytes (which none of them holds), then optionally a fifth part: the
#: witness keys to require, one ``name+hex8+base64`` per line. A missing part is a missing file.
BUNDLE_FILES = (bundle.ENTRIES, bundle.CHECKPOINT, bundle.JWKS, bundle.VKEY)
SEPARATOR = b"\x00"


def pack_bundle(files: dict[str, bytes], witnesses: bytes | None = None) -> bytes:
    """The fuzz container of a bundle's files (see :data:`BUNDLE_FILES`)."""
    parts = [files[name] for name in BUNDLE_FILES]
    if witnesses is not None:
        parts.append(witnesses)
    return SEPARATOR.join(parts)


def check_bundle(data: bytes) -> None:
    """Bundle reading and verification never raise: every problem is a failure in the report,
    each failure names a real line, and a bundle that verifies covers exactly its checkpoint."""
    parts = data.split(SEPARATOR, len(BUNDLE_FILES))
    with tempfile.TemporaryDirectory(prefix="callproof-fuzz-") as tmp:
        path = Path(tmp)
        for name, content in zip(BUNDLE_FILES, parts, strict=False):
            (path / name).write_bytes(content)
        report = bundle.verify_bundle(path, workers=1, trust_bundle_key=True)
        _check_report(report)
        if len(parts) > len(BUNDLE_FILES):
            witnesses = [w for line in parts[-1].decode("utf-8", "replace").splitlines()
                         if (w := _refused(_NOTE_ERRORS, note.Verifier.parse, line))]
            previous = parts[1] if len(parts) > 1 else None
            pinned = _refused(_NOTE_ERRORS, note.Verifier.parse,
                              parts[3].decode("utf-8", "replace").strip()) \
                if len(parts) > 3 else None
            again = bundle.verify_bundle(path, log_key=pinned or LOG_VERIFIER,
                                         witnesses=witnesses, previous=previous, workers=1)
            _check_report(again)


def _check_report(report: bundle.VerifyReport) -> None:
    for failure in report.failures:
        _holds(isinstance(failure.message, str) and failure.message)
        _holds(failure.line is None or 1 <= failure.line <= max(report.entries, 1), failure)
        str(failure)
    if report.ok:
        cp = report.checkpoint
        _holds(cp is not None and report.entries == cp.size and report.root == cp.root, cp)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ticket": check_ticket,
    "code": check_code,
    "note": check_note,
    "bundle": check_bundle,
}
