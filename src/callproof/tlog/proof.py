"""C2SP tlog-proof (c2sp.org/tlog-proof): one entry's inclusion proof with its checkpoint.

Writer, reader and offline verifier of the one format, in one file. A proof is a header line,
an optional ``extra`` line (the entry's bytes, base64), an ``index`` line, the inclusion proof's
hashes (base64, one a line), a blank line and the signed checkpoint note.

    >>> text = format_tlog_proof(3, hashes, signed_checkpoint, extra=event_body)
    >>> verify_tlog_proof(text, log_key).index
    3
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from callproof.errors import NoteError, ProofError
from callproof.protocol.events import Event
from callproof.tlog import merkle, note

__all__ = [
    "ORIGIN_SUFFIX",
    "TLOG_PROOF_HEADER",
    "ProofReport",
    "format_tlog_proof",
    "log_origin",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

#: A log's origin (and its key's name) is the issuer id followed by this.
ORIGIN_SUFFIX = "/callproof-log"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


def log_origin(issuer: str) -> str:
    """The checkpoint origin and note key name of ``issuer``'s log."""
    return issuer + ORIGIN_SUFFIX


def format_tlog_proof(index: int, proof: Iterable[bytes], signed_checkpoint: str, *,
                      extra: bytes | None = None) -> str:
    """A C2SP tlog-proof: header, optional extra, index, hashes, blank line, the checkpoint."""
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in proof)
    return "\n".join(lines) + "\n\n" + signed_checkpoint


@dataclass(frozen=True)
class ProofReport:
    """A verified tlog-proof: the checkpoint, the index and the entry (the ``extra`` bytes)."""

    checkpoint: note.Checkpoint
    index: int
    entry: bytes
    event: Event | None


def parse_tlog_proof(text: str | bytes) -> tuple[bytes | None, int, list[bytes], str]:
    """Split a C2SP tlog-proof into ``(extra, index, proof hashes, signed checkpoint)``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError("the proof is not UTF-8") from e
    head, sep, signed = text.partition("\n\n")
    if not sep:
        raise NoteError("the proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise NoteError(f"the proof does not start with {TLOG_PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _unb64(rest.pop(0)[6:], "the extra data")
    if not rest or not rest[0].startswith("index "):
        raise NoteError("the proof has no index line")
    index_text = rest.pop(0)[6:]
    if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")) or \
            not index_text.isascii():
        raise NoteError(f"the index {index_text!r} is not a plain decimal")
    hashes = [_unb64(h, f"proof hash {i + 1}") for i, h in enumerate(rest)]
    return extra, int(index_text), hashes, signed


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise NoteError(f"{what} is not base64") from e
    return raw


def verify_tlog_proof(text: str | bytes, log_key: note.Verifier, *,
                      entry: bytes | None = None) -> ProofReport:
    """Check a tlog-proof offline: the checkpoint's signature and the leaf's inclusion.

    The entry is ``entry`` if given (it must equal the proof's extra data when both exist),
    else the extra data. Raises :class:`~callproof.tlog.NoteError` or
    :class:`~callproof.tlog.ProofError` naming what failed.
    """
    extra, index, proof, signed = parse_tlog_proof(text)
    opened = note.open_note(signed, [log_key])
    cp = note.Checkpoint.from_text(opened.text)
    if cp.origin != log_key.name:
        raise NoteError(f"the checkpoint is of the log {cp.origin!r}, not {log_key.name!r}")
    if entry is not None and extra is not None and entry != extra:
        raise ProofError("the entry given is not the one the proof carries")
    leaf = entry if entry is not None else extra
    if leaf is None:
        raise ProofError("the proof carries no entry: give the entry's bytes")
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, cp.size, proof, cp.root)
    try:
        event: Event | None = Event.from_bytes(leaf)
    except (ValueError, UnicodeDecodeError):
        event = None
    return ProofReport(cp, index, leaf, event)
