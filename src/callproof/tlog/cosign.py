"""C2SP tlog-witness wire codecs (c2sp.org/tlog-witness) and the witness quorum.

The add-checkpoint request (``old N``, the consistency proof's hashes, a blank line, the signed
checkpoint), the ``text/x.tlog.size`` answer to a stale size, the cosignature lines of a 200
answer, and :func:`check_quorum`: which of the given witnesses validly cosigned a checkpoint.
Both the log's client and the witness server use these; so does the offline auditor.

    >>> body = request_body(4, proof_hashes, signed_checkpoint)
    >>> parse_request(body)[0]
    4
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from callproof.errors import NoteError, WitnessError
from callproof.tlog import merkle, note

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "SIZE_CONTENT_TYPE",
    "QuorumError",
    "WitnessProblem",
    "check_quorum",
    "parse_request",
    "parse_size",
    "read_cosignature",
    "request_body",
]

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
#: The largest add-checkpoint body accepted: a 63-hash proof and a checkpoint with a few
#: signatures take about 4 KiB; 64 KiB leaves room for many cosignatures.
MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024

_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")
_SIZE = re.compile(r"(0|[1-9][0-9]{0,19})\n?")


def request_body(old_size: int, proof: Sequence[bytes], signed_note: str) -> bytes:
    """An add-checkpoint body: ``old N``, the proof hashes, a blank line, the checkpoint."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n\n" + signed_note).encode("utf-8")


def parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    """Split an add-checkpoint body into (old size, consistency proof, signed checkpoint)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessError(413, f"the request is longer than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WitnessError(400, "the request is not UTF-8") from e
    head, sep, signed = text.partition("\n\n")
    if not sep:
        raise WitnessError(400, "the request has no blank line before the checkpoint")
    lines = head.split("\n")
    found = _OLD.fullmatch(lines[0])
    if found is None:
        raise WitnessError(400, "the first line must be `old <size>` (a plain decimal)")
    hashes = lines[1:]
    if len(hashes) > MAX_PROOF_LINES:
        raise WitnessError(400, f"the consistency proof has {len(hashes)} lines, more than "
                                f"{MAX_PROOF_LINES}")
    proof = []
    for i, line in enumerate(hashes, 1):
        try:
            raw = base64.b64decode(line.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as e:
            raise WitnessError(400, f"consistency proof line {i} is not base64") from e
        if len(raw) != merkle.HASH_SIZE:
            raise WitnessError(400, f"consistency proof line {i} is not a 32-byte hash")
        proof.append(raw)
    return int(found.group(1)), proof, signed


def parse_size(content_type: str, text: str) -> int | None:
    """The tree size of a 409 answer (``text/x.tlog.size``), or None when it is not one."""
    if content_type.split(";")[0].strip().lower() != SIZE_CONTENT_TYPE:
        return None
    found = _SIZE.fullmatch(text)
    return int(found.group(1)) if found else None


def read_cosignature(response: str, checkpoint_text: str,
                     verifier: note.Verifier) -> tuple[note.Signature, int]:
    """The cosignature by ``verifier`` among the signature lines of a 200 answer, verified.

    Lines by other keys are ignored. Raises :class:`~callproof.tlog.NoteError` when
    there is none or it does not verify.
    """
    if len(response) > MAX_RESPONSE_BYTES or not response.endswith("\n"):
        raise NoteError("the answer is not newline-terminated signature lines")
    for line in response[:-1].split("\n"):
        signature = note.Signature.from_line(line)
        if (signature.name, signature.key_id) == (verifier.name, verifier.key_id):
            return signature, note.verify_cosignature(checkpoint_text, signature, verifier)
    raise NoteError(f"the answer holds no cosignature by {verifier.name!r} "
                         f"({verifier.key_id:08x})")


@dataclass(frozen=True)
class WitnessProblem:
    """What is wrong with one given witness's cosignature: ``witness`` is its name and key id,
    ``error`` why its line does not verify, or None when it has no line at all."""

    witness: str
    error: str | None = None

    def __str__(self) -> str:
        if self.error is None:
            return f"{self.witness}: no cosignature"
        return f"{self.witness}: the cosignature is invalid ({self.error}); it was altered or " \
            "is not over this checkpoint"


class QuorumError(NoteError):
    """The quorum cannot be met by the keys given (``good`` is None) or was not met: ``good``
    of the ``given`` distinct witnesses cosigned, ``need`` were required, ``problems`` says
    what is wrong with the others."""

    def __init__(self, need: int, given: int, good: list[note.Verifier] | None = None,
                 problems: Sequence[WitnessProblem] = ()) -> None:
        self.need, self.given, self.good, self.problems = need, given, good, list(problems)
        if good is None:
            message = f"a quorum of {need} cannot be met by the 1 witness key given" \
                if given == 1 else f"a quorum of {need} cannot be met by the {given} distinct " \
                "witness keys given"
        else:
            message = f"witness quorum not met: {len(good)} of the {given} given witnesses " \
                f"cosigned this checkpoint, {need} required" \
                + (f" (cosigned: {', '.join(w.name for w in good)})" if good else "") \
                + "; " + "; ".join(map(str, self.problems))
        super().__init__(message)


def check_quorum(signed_checkpoint: str | bytes, witnesses: Sequence[note.Verifier],
                 quorum: int | None = None) -> tuple[list[note.Verifier], list[WitnessProblem]]:
    """Which of ``witnesses`` validly cosigned the checkpoint note, and what is wrong with the
    others. Raises :class:`QuorumError` when the quorum cannot be or is not met, naming each
    missing or invalid cosignature. ``quorum`` defaults to all of them.
    """
    distinct: dict[tuple[str, int], note.Verifier] = {}
    for w in witnesses:
        if w.algorithm != note.ALG_COSIGNATURE_V1:
            raise NoteError(f"the witness key {w.name!r} ({w.key_id:08x}) is not a "
                                 "cosignature (type 0x04) key")
        distinct.setdefault((w.name, w.key_id), w)
    need = len(distinct) if quorum is None else quorum
    if not 1 <= need <= len(distinct):
        raise QuorumError(need, len(distinct))
    text, signatures = note.split_note(signed_checkpoint)
    by_key: dict[tuple[str, int], list[note.Signature]] = {}
    for s in signatures:  # lines by keys not given are ignored, however they repeat
        by_key.setdefault((s.name, s.key_id), []).append(s)
    good: list[note.Verifier] = []
    problems: list[WitnessProblem] = []
    for key, w in distinct.items():
        label = f"{w.name} ({w.key_id:08x})"
        lines = by_key.get(key)
        if not lines:
            problems.append(WitnessProblem(label))
            continue
        try:  # a repeated line counts once, and every line of a given witness must verify
            for s in dict.fromkeys(lines):
                note.verify_cosignature(text, s, w)
        except NoteError as e:
            problems.append(WitnessProblem(label, str(e)))
            continue
        good.append(w)
    if len(good) < need:
        raise QuorumError(need, len(distinct), good, problems)
    return good, problems
