"""The auditor's side: check an export bundle, or one tlog-proof, offline — no store needed.

A bundle (spec/audit-log.md §5) is a directory holding ``entries.jsonl`` (one event body per
line, leaf 0 first), ``checkpoint`` (the log's signed note of exactly that many entries),
``jwks.json`` (every ticket key with its status and times) and ``log.vkey``. The checkpoint
may carry witness cosignatures; given the witnesses' keys, a quorum of them is required.

    >>> report = verify_bundle("bundle/", log_key="shop.example/callproof-log+1a2b3c4d+AQ…",
    ...                        witnesses=["w.example/w1+…+BA…", "w.example/w2+…+BA…"], quorum=2)
    >>> report.ok, [str(f) for f in report.failures]
    (True, [])
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..canonical import canonical_json, parse_json_strict
from ..clock import from_epoch
from ..errors import CallproofError, TicketError
from ..events import Event
from ..jws import b64url_decode
from ..keys import ACTIVE, RETIRED, REVOKED, KeySet, TicketKey
from ..ticket import CLOCK_SKEW, verify_ticket
from . import merkle, note
from .log import ORIGIN_SUFFIX, TLOG_PROOF_HEADER

__all__ = [
    "Failure",
    "ProofReport",
    "VerifyReport",
    "check_quorum",
    "load_verifier",
    "parse_tlog_proof",
    "verify_bundle",
    "verify_tlog_proof",
]

ENTRIES, CHECKPOINT, JWKS, VKEY = "entries.jsonl", "checkpoint", "jwks.json", "log.vkey"
_TICKET_EVENTS_BEFORE_ISSUE = "comes before its ticket.issued"


@dataclass(frozen=True)
class Failure:
    """One thing that does not hold; ``line`` is the 1-based line of entries.jsonl, if any."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass
class VerifyReport:
    """What :func:`verify_bundle` found. ``ok`` only when there is no failure."""

    entries: int = 0
    tickets: int = 0
    checkpoint: note.Checkpoint | None = None
    root: bytes | None = None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cosigned_by: list[str] = field(default_factory=list)  # the given witnesses that cosigned

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, message: str, line: int | None = None) -> None:
        self.failures.append(Failure(message, line))


def load_verifier(value: str) -> note.Verifier:
    """A note verifier key given as the ``name+hex8+base64`` string or a file holding it."""
    text = value
    if "+" not in value or os.path.isfile(value):
        try:
            text = Path(value).read_text("utf-8").strip()
        except OSError as e:
            raise note.NoteError(f"cannot read the verifier key file {value}: {e}") from e
    return note.Verifier.parse(text.strip())


def _keys_from_jwks(raw: Any, report: VerifyReport) -> dict[str, TicketKey]:
    """The bundle's ticket keys with their statuses and times (epoch seconds)."""
    keys: dict[str, TicketKey] = {}
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        report.fail("jwks.json: not an object with a list of keys")
        return keys
    for i, jwk in enumerate(entries):
        try:
            if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or \
                    jwk.get("crv") != "Ed25519":
                raise ValueError("not an OKP/Ed25519 key")

            def at(name: str, jwk: dict[str, Any] = jwk) -> Any:
                v = jwk.get(name)
                if v is not None and type(v) is not int:
                    raise ValueError(f"{name} is not epoch seconds")
                return from_epoch(v) if v is not None else None

            key = TicketKey(kid=str(jwk.get("kid")), x=str(jwk.get("x")),
                            status=str(jwk.get("status", ACTIVE)), created_at=at("created_at"),
                            retired_at=at("retired_at"), revoked_at=at("revoked_at"),
                            compromised_at=at("compromised_at"))
        except (ValueError, CallproofError) as e:
            report.fail(f"jwks.json: key {i + 1} is refused: {e}")
            continue
        keys[key.kid] = key
    return keys


def _kid_of(token: Any) -> str | None:
    """The kid named in a compact JWS header (unverified), or None."""
    if not isinstance(token, str):
        return None
    try:
        header = parse_json_strict(b64url_decode(token.split(".", 1)[0]))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


class _Tickets:
    """Checks every ticket.issued against the bundle's keys, at the time it was logged."""

    def __init__(self, keys: dict[str, TicketKey], issuer: str, skew: timedelta) -> None:
        self.keys = keys
        self.issuer = issuer
        self.skew = skew
        # For the check itself a revoked key verifies (as it was before revocation); whether the
        # ticket counts is decided by its compromise time first.
        self.historical = KeySet(
            replace(k, status=RETIRED if k.retired_at else ACTIVE) if k.status == REVOKED else k
            for k in keys.values())
        self.created: dict[str, str] = {}  # kid -> x, from key.created events so far

    def check(self, event: Event, line: int, report: VerifyReport) -> None:
        token, ticket_id = event.data.get("ticket"), event.data.get("ticket_id")
        kid = _kid_of(token)
        key = self.keys.get(kid) if kid is not None else None
        if kid is None:
            report.fail(f"ticket {ticket_id}: the logged ticket is not a compact JWS", line)
            return
        if key is None:
            report.fail(f"ticket {ticket_id}: signed by key {kid}, which jwks.json lacks", line)
            return
        if kid not in self.created:
            report.fail(f"ticket {ticket_id}: signed by key {kid}, which the log had not "
                        "created before this line", line)
        if key.status == REVOKED and key.compromised_at is not None and \
                event.at >= int(key.compromised_at.timestamp()):
            report.fail(f"ticket {ticket_id}: signed by key {kid}, compromised at "
                        f"{int(key.compromised_at.timestamp())}; logged at {event.at}, not "
                        "before: it does not count", line)
            return
        try:
            claims = verify_ticket(str(token), self.historical, now=from_epoch(event.at),
                                   issuer=self.issuer, skew=self.skew)
        except TicketError as e:
            report.fail(f"ticket {ticket_id}: does not verify when logged ({e.outcome}: {e})",
                        line)
            return
        if claims.jti != ticket_id:
            report.fail(f"ticket {ticket_id}: the logged ticket's jti is {claims.jti}", line)


def verify_bundle(directory: str | os.PathLike[str], *, log_key: str | note.Verifier | None = None,
                  previous: str | bytes | None = None, skew: timedelta = CLOCK_SKEW,
                  progress: Callable[[int], None] | None = None,
                  witnesses: Sequence[str | note.Verifier] = (),
                  quorum: int | None = None) -> VerifyReport:
    """Check a bundle from its files alone (spec/audit-log.md §6).

    ``log_key`` pins the log's verifier key (without it the bundle's own ``log.vkey`` is used,
    with a warning); ``previous`` is an earlier signed checkpoint the auditor kept, whose tree
    the bundle must extend. ``witnesses`` are the cosignature (type 0x04) keys of the witnesses
    the auditor trusts; at least ``quorum`` distinct ones of them (default: all) must have
    cosigned the checkpoint. Without witnesses no quorum is checked (a note says so).
    ``progress`` is called with the number of lines read so far.
    """
    path = Path(directory)
    report = VerifyReport()

    # 1. The pinned log key.
    bundle_vkey: note.Verifier | None = None
    try:
        bundle_vkey = note.Verifier.parse((path / VKEY).read_text("utf-8").strip())
    except (OSError, UnicodeDecodeError, note.NoteError) as e:
        report.warnings.append(f"{VKEY}: cannot be read ({e})")
    if log_key is None:
        pinned = bundle_vkey
        if pinned is not None:
            report.warnings.append(
                "no log key was pinned (--log-key): the bundle's own log.vkey is trusted, which "
                "shows only that the bundle agrees with itself")
    else:
        try:
            pinned = log_key if isinstance(log_key, note.Verifier) else load_verifier(log_key)
        except note.NoteError as e:
            report.fail(f"the pinned log key is refused: {e}")
            return report
        if bundle_vkey is not None and bundle_vkey != pinned:
            report.warnings.append("the bundle's log.vkey is not the pinned log key")
    if pinned is None:
        report.fail("no log key: pin one with --log-key, the bundle has no readable log.vkey")
        return report
    if not pinned.name.endswith(ORIGIN_SUFFIX):
        report.warnings.append(f"the log key's name {pinned.name!r} is not a callproof log's")
    issuer = pinned.name.removesuffix(ORIGIN_SUFFIX)

    # 2. The checkpoint, signed by the pinned key, of this log.
    checkpoint = _open_checkpoint(path / CHECKPOINT, pinned, "checkpoint", report)
    report.checkpoint = checkpoint
    if witnesses or quorum is not None:
        _quorum(path / CHECKPOINT, checkpoint, witnesses, quorum, report)
    else:
        report.notes.append("no witness keys were given (--witness): no witness quorum was "
                            "checked, so only the log vouches that everyone was shown this "
                            "history")

    # 3. The keys.
    try:
        keys = _keys_from_jwks(json.loads((path / JWKS).read_text("utf-8")), report)
    except (OSError, ValueError) as e:
        report.fail(f"{JWKS}: cannot be read ({e})")
        keys = {}
    tickets = _Tickets(keys, issuer, skew)
    prev = _open_checkpoint(previous, pinned, "the previous checkpoint", report) \
        if previous is not None else None

    # 4. Every line, streamed: its leaf, its shape, its ticket, its place in the story.
    tree = merkle.CompactRange()
    root_at_checkpoint = merkle.EMPTY_ROOT if checkpoint is not None and checkpoint.size == 0 \
        else None
    root_at_previous = merkle.EMPTY_ROOT if prev is not None and prev.size == 0 else None
    issued: dict[str, int] = {}
    revoked_in_log: dict[str, tuple[int, Any]] = {}
    try:
        f = open(path / ENTRIES, "rb")
    except OSError as e:
        report.fail(f"{ENTRIES}: cannot be read ({e})")
        return report
    with f:
        line = 0
        for raw in f:
            line += 1
            if not raw.endswith(b"\n"):
                report.fail("the last line does not end with a newline", line)
            body = raw[:-1] if raw.endswith(b"\n") else raw
            tree.append(merkle.leaf_hash(body))
            if checkpoint is not None and tree.size == checkpoint.size:
                root_at_checkpoint = tree.root()
            if prev is not None and tree.size == prev.size:
                root_at_previous = tree.root()
            if progress is not None and line % 10_000 == 0:
                progress(line)
            _check_line(body, line, issuer, report, tickets, issued, revoked_in_log)
    report.entries = tree.size
    report.tickets = len(issued)
    report.root = tree.root()
    if progress is not None:
        progress(line)

    # 5. The keys the log names agree with jwks.json.
    for kid, (line_no, compromised_at) in revoked_in_log.items():
        key = keys.get(kid)
        if key is None or key.status != REVOKED:
            report.fail(f"key {kid} is revoked in the log but not in jwks.json", line_no)
        elif key.compromised_at is None or \
                int(key.compromised_at.timestamp()) != compromised_at:
            report.fail(f"key {kid}: the log says compromised at {compromised_at}, jwks.json "
                        "says otherwise", line_no)

    # 6. The tree against the checkpoint.
    if checkpoint is not None:
        n, size = tree.size, checkpoint.size
        if n < size:
            report.fail(f"{ENTRIES} has {n} lines but the checkpoint covers {size}: "
                        f"{size - n} entries are missing (dropped lines?)")
        elif n > size:
            report.fail(f"lines {size + 1}–{n} are not covered by the checkpoint (tree size "
                        f"{size}): entries were added after it was signed", size + 1)
        if root_at_checkpoint is not None and \
                not hmac.compare_digest(root_at_checkpoint, checkpoint.root):
            report.fail(
                f"the Merkle root of lines 1–{size} is {_b64(root_at_checkpoint)} but the "
                f"checkpoint says {_b64(checkpoint.root)}: an entry was edited, removed, added "
                "or reordered, or the checkpoint belongs to another bundle")

    # 7. Append-only: the bundle extends the checkpoint the auditor kept.
    if prev is not None and checkpoint is not None:
        if prev.size > checkpoint.size:
            report.fail(f"the previous checkpoint covers {prev.size} entries, this bundle's "
                        f"only {checkpoint.size}: the log went backwards")
        elif prev.size == checkpoint.size and prev.root != checkpoint.root:
            report.fail(f"fork: two checkpoints of size {prev.size} with different roots, both "
                        "signed by the log key — the log showed two different histories")
        elif root_at_previous is not None and \
                not hmac.compare_digest(root_at_previous, prev.root):
            report.fail(f"fork: lines 1–{prev.size} do not give the root of the previous "
                        "checkpoint — the log rewrote its history since then")
    return report


def check_quorum(signed_checkpoint: str | bytes, witnesses: Sequence[note.Verifier],
                 quorum: int | None = None) -> tuple[list[note.Verifier], list[str]]:
    """Which of ``witnesses`` validly cosigned the checkpoint note, and what is wrong with the
    others. Raises :class:`~callproof.audit.note.NoteError` when the quorum is not met, with a
    message naming each missing or invalid cosignature. ``quorum`` defaults to all of them.
    """
    distinct: dict[tuple[str, int], note.Verifier] = {}
    for w in witnesses:
        if w.algorithm != note.ALG_COSIGNATURE_V1:
            raise note.NoteError(f"the witness key {w.name!r} ({w.key_id:08x}) is not a "
                                 "cosignature (type 0x04) key")
        distinct.setdefault((w.name, w.key_id), w)
    need = len(distinct) if quorum is None else quorum
    if not 1 <= need <= len(distinct):
        raise note.NoteError(f"a quorum of {need} cannot be met by the {len(distinct)} distinct "
                             "witness key(s) given")
    text, signatures = note.split_note(signed_checkpoint)
    by_key = {(s.name, s.key_id): s for s in signatures}
    good: list[note.Verifier] = []
    problems: list[str] = []
    for key, w in distinct.items():
        label = f"{w.name} ({w.key_id:08x})"
        s = by_key.get(key)
        if s is None:
            problems.append(f"{label}: no cosignature")
            continue
        try:
            note.verify_cosignature(text, s, w)
        except note.NoteError as e:
            problems.append(f"{label}: the cosignature is invalid ({e}); it was altered or is "
                            "not over this checkpoint")
            continue
        good.append(w)
    if len(good) < need:
        raise note.NoteError(
            f"witness quorum not met: {len(good)} of the {len(distinct)} given witnesses "
            f"cosigned this checkpoint, {need} required"
            + (f" (cosigned: {', '.join(w.name for w in good)})" if good else "")
            + "; " + "; ".join(problems))
    return good, problems


def _quorum(source: Path, checkpoint: note.Checkpoint | None,
            witnesses: Sequence[str | note.Verifier], quorum: int | None,
            report: VerifyReport) -> None:
    """Step 2b: at least ``quorum`` of the given witnesses cosigned the bundle's checkpoint."""
    if not witnesses:
        report.fail("a witness quorum was asked for but no witness key was given (--witness)")
        return
    keys: list[note.Verifier] = []
    for value in witnesses:
        try:
            keys.append(value if isinstance(value, note.Verifier) else load_verifier(value))
        except note.NoteError as e:
            report.fail(f"a witness key is refused: {e}")
            return
    if checkpoint is None:
        return  # already failed: nothing to count cosignatures on
    try:
        good, problems = check_quorum(source.read_bytes(), keys, quorum)
    except (OSError, note.NoteError) as e:
        report.fail(f"checkpoint: {e}")
        return
    report.cosigned_by = [w.name for w in good]
    report.warnings.extend(f"witness {p}" for p in problems)


def _open_checkpoint(source: Path | str | bytes, pinned: note.Verifier, what: str,
                     report: VerifyReport) -> note.Checkpoint | None:
    try:
        text = source.read_bytes() if isinstance(source, Path) else source
    except OSError as e:
        report.fail(f"{what}: cannot be read ({e})")
        return None
    try:
        opened = note.open_note(text, [pinned])
        cp = note.Checkpoint.from_text(opened.text)
    except note.NoteError as e:
        report.fail(f"{what} is not signed by the pinned log key {pinned.name} "
                    f"({pinned.key_id:08x}): {e}")
        return None
    if cp.origin != pinned.name:
        report.fail(f"{what} is of the log {cp.origin!r}, not {pinned.name!r}")
        return None
    return cp


def _check_line(body: bytes, line: int, issuer: str, report: VerifyReport, tickets: _Tickets,
                issued: dict[str, int], revoked: dict[str, tuple[int, Any]]) -> None:
    try:
        event = Event.from_bytes(body)
    except (ValueError, UnicodeDecodeError) as e:
        report.fail(f"not a callproof v1 event ({e})", line)
        return
    try:
        canonical = canonical_json(parse_json_strict(body)) == body
    except (ValueError, CallproofError):
        canonical = False
    if not canonical:
        report.fail("not canonical JSON (RFC 8785): the leaf bytes were altered", line)
    if event.issuer != issuer:
        report.fail(f"an event of {event.issuer!r} in the log of {issuer!r}", line)
    ticket_id = event.data.get("ticket_id")
    if event.type == "ticket.issued":
        if not isinstance(ticket_id, str):
            report.fail("ticket.issued without a ticket_id", line)
            return
        if ticket_id in issued:
            report.fail(f"ticket {ticket_id} is issued a second time (first on line "
                        f"{issued[ticket_id]})", line)
        issued.setdefault(ticket_id, line)
        tickets.check(event, line, report)
    elif event.type.startswith(("ticket.", "alert.")) and isinstance(ticket_id, str) and \
            ticket_id not in issued:
        report.fail(f"{event.type} of ticket {ticket_id} {_TICKET_EVENTS_BEFORE_ISSUE}", line)
    elif event.type == "key.created":
        kid, x = event.data.get("kid"), event.data.get("x")
        if isinstance(kid, str) and isinstance(x, str):
            known = tickets.keys.get(kid)
            if known is None or known.x != x:
                report.fail(f"key {kid} created in the log is not in jwks.json", line)
            tickets.created[kid] = x
    elif event.type == "key.revoked":
        kid = event.data.get("kid")
        if isinstance(kid, str):
            revoked[kid] = (line, event.data.get("compromised_at"))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- one inclusion proof -----------------------------------------------------------------------


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
            raise note.NoteError("the proof is not UTF-8") from e
    head, sep, signed = text.partition("\n\n")
    if not sep:
        raise note.NoteError("the proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise note.NoteError(f"the proof does not start with {TLOG_PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _unb64(rest.pop(0)[6:], "the extra data")
    if not rest or not rest[0].startswith("index "):
        raise note.NoteError("the proof has no index line")
    index_text = rest.pop(0)[6:]
    if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")) or \
            not index_text.isascii():
        raise note.NoteError(f"the index {index_text!r} is not a plain decimal")
    hashes = [_unb64(h, f"proof hash {i + 1}") for i, h in enumerate(rest)]
    return extra, int(index_text), hashes, signed


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise note.NoteError(f"{what} is not base64") from e
    return raw


def verify_tlog_proof(text: str | bytes, log_key: note.Verifier, *,
                      entry: bytes | None = None) -> ProofReport:
    """Check a tlog-proof offline: the checkpoint's signature and the leaf's inclusion.

    The entry is ``entry`` if given (it must equal the proof's extra data when both exist),
    else the extra data. Raises :class:`~callproof.audit.note.NoteError` or
    :class:`~callproof.audit.merkle.ProofError` naming what failed.
    """
    extra, index, proof, signed = parse_tlog_proof(text)
    opened = note.open_note(signed, [log_key])
    cp = note.Checkpoint.from_text(opened.text)
    if cp.origin != log_key.name:
        raise note.NoteError(f"the checkpoint is of the log {cp.origin!r}, not {log_key.name!r}")
    if entry is not None and extra is not None and entry != extra:
        raise merkle.ProofError("the entry given is not the one the proof carries")
    leaf = entry if entry is not None else extra
    if leaf is None:
        raise merkle.ProofError("the proof carries no entry: give the entry's bytes")
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, cp.size, proof, cp.root)
    try:
        event: Event | None = Event.from_bytes(leaf)
    except (ValueError, UnicodeDecodeError):
        event = None
    return ProofReport(cp, index, leaf, event)
