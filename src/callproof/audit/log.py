"""The running audit log: checkpoints signed with the log key, witnesses asked to cosign them,
inclusion and consistency proofs, the history JWKS and the export bundle auditors verify offline.

Every event is already a leaf of its issuer's RFC 6962 tree, written in the event's own
transaction (:mod:`callproof.store.log_tree`). :class:`AuditLog` signs checkpoints of that tree
(C2SP tlog-checkpoint, signed as a C2SP signed note with the log key ``<data dir>/keys/log.key``),
keeps them in ``log_checkpoints`` and the latest one also in ``<data dir>/log/checkpoint``,
outside the database. The log signs nothing that is not consistent with its previous checkpoint,
and the store refuses to append while the database is behind that file
(:class:`~callproof.store.log_tree.CheckpointGuard`). Each new checkpoint can be pushed to the
witnesses listed in ``<data dir>/witnesses.toml`` (:meth:`AuditLog.push_to_witnesses`, over
:mod:`callproof.audit.witnessing`); the cosignatures they return are checked and kept in
``witness_cosignatures``, and go with the checkpoint into proofs and export bundles. See
spec/audit-log.md.

    >>> log = AuditLog(Deployment.open("callproof-data"))
    >>> signed = log.checkpoint()          # sign the current size and root
    >>> proof = log.prove_ticket(ticket_id)  # a C2SP tlog-proof of its ticket.issued leaf
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, insert, select

from callproof import config
from callproof._files import read_private_key, write_atomic
from callproof.audit import witnessing
from callproof.deployment import Deployment
from callproof.errors import (
    ConfigError,
    InputError,
    LogBehindCheckpoint,
    LogError,
    LogForked,
    NotFound,
    PushError,
    StoreError,
)
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.store import schema
from callproof.store.integrator import integrate_all
from callproof.store.log_tree import consistency_proof, inclusion_proof, root_at, tree_size
from callproof.tlog import cosign, merkle, note
from callproof.tlog.proof import format_tlog_proof, log_origin

__all__ = [
    "AuditLog",
    "PushResult",
    "SignedCheckpoint",
]


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and the signed note that carries it."""

    checkpoint: note.Checkpoint
    note: str
    signed_at: int | None = None

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root


def load_log_key(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    """Read the log key. Raises :class:`ConfigError` with a clear reason."""
    return read_private_key(path, passphrase, what="the log key",
                            missing=f"the audit log key {path} is missing: run `callproof init`")


@dataclass(frozen=True)
class PushResult:
    """What one witness did with a checkpoint: cosigned it (``cosigned_at``) or not (``error``).

    ``stored`` is true when the cosignature was already kept from an earlier push.
    """

    witness: witnessing.WitnessEndpoint
    size: int
    cosigned_at: int | None = None
    error: str | None = None
    stored: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.error is not None:
            return f"witness {self.witness.name}: did not cosign: {self.error}"
        return f"witness {self.witness.name}: cosigned size {self.size} (time {self.cosigned_at})"


_C = schema.log_checkpoints
_E = schema.events
_Q = schema.event_queue
#: The named lock a checkpoint is signed under: one signer at a time, so the checkpoint file
#: never goes backwards (requests never take it).
CHECKPOINT_LOCK = "checkpoint"
_W = schema.witness_cosignatures


class AuditLog:
    """One issuer's audit log: its size and root, checkpoints, proofs and export bundles.

    ``every_events`` and ``every_seconds`` set when :meth:`checkpoint_if_due` signs.
    """

    def __init__(self, deployment: Deployment, *, every_events: int = 1000,
                 every_seconds: int = 300) -> None:
        self.dep = deployment
        self.issuer = deployment.issuer_id
        self.origin = log_origin(self.issuer)
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._signer: note.Signer | None = None

    def __repr__(self) -> str:
        return f"AuditLog({self.origin!r})"

    @property
    def checkpoint_file(self) -> Path:
        return self.dep.data_dir.log_checkpoint_file

    def signer(self) -> note.Signer:
        """The log's note signer (loads ``keys/log.key`` once)."""
        if self._signer is None:
            key = load_log_key(self.dep.data_dir.log_key_file, config.passphrase())
            try:
                self._signer = note.Signer(self.origin, key)
            except note.NoteError as e:
                raise ConfigError(f"the issuer id cannot name a log key: {e}") from e
        return self._signer

    def verifier(self) -> note.Verifier:
        return self.signer().verifier()

    def vkey(self) -> str:
        """The log's verifier key, ``name+hex8+base64``, for auditors to pin."""
        return self.verifier().to_vkey()

    # --- reading ----------------------------------------------------------------------------

    def integrate(self) -> int:
        """Integrate the events queued so far into the tree (:mod:`callproof.store.integrator`);
        return how many. Reads of "the log now" do this first, without waiting for an
        integrator that is already at it (the worker integrates on its own timer too)."""
        return integrate_all(self.dep.store)

    def size(self) -> int:
        """The number of leaves, after integrating what is queued."""
        self.integrate()
        with self.dep.store.read() as conn:
            return tree_size(conn, self.issuer)

    def root(self, size: int | None = None) -> bytes:
        if size is None:
            self.integrate()
        with self.dep.store.read() as conn:
            size = self._check_size(conn, size)
            return root_at(conn, self.issuer, size)

    def _check_size(self, conn: Connection, size: int | None) -> int:
        current = tree_size(conn, self.issuer)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"the log has {current} entries; there is no tree of size {size}",
                             reason="bad_size")
        return size

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self.dep.store.read() as conn:
            self._check_size(conn, size)
            return self._inclusion(conn, index, size)

    def _inclusion(self, conn: Connection, index: int, size: int) -> list[bytes]:
        try:
            return inclusion_proof(conn, self.issuer, index, size)
        except merkle.ProofError as e:
            raise InputError(str(e), reason="bad_size") from e

    def consistency_proof(self, old_size: int, new_size: int | None = None
                          ) -> tuple[int, bytes, int, bytes, list[bytes]]:
        """``(old_size, old_root, new_size, new_root, proof)``; new_size defaults to the size."""
        with self.dep.store.read() as conn:
            new_size = self._check_size(conn, new_size)
            if not 0 < old_size <= new_size:
                raise InputError(f"the old size must be 1–{new_size}", reason="bad_size")
            proof = self._consistency(conn, old_size, new_size)
            return (old_size, root_at(conn, self.issuer, old_size), new_size,
                    root_at(conn, self.issuer, new_size), proof)

    def _consistency(self, conn: Connection, old_size: int, new_size: int) -> list[bytes]:
        return consistency_proof(conn, self.issuer, old_size, new_size)

    def entries(self, size: int, *, batch: int = 5000) -> Iterator[bytes]:
        """The leaves ``0 … size-1`` (event bodies), read in batches."""
        start = 0
        while start < size:
            with self.dep.store.read() as conn:
                rows = conn.execute(select(_E.c.idx, _E.c.body).where(
                    _E.c.issuer_id == self.issuer, _E.c.idx >= start,
                    _E.c.idx < min(size, start + batch)).order_by(_E.c.idx)).all()
            for idx, body in rows:
                if idx != start:
                    raise LogError(f"the events of {self.issuer!r} have a gap at {start}")
                start += 1
                yield bytes(body)
            if not rows:
                raise LogError(f"the log has no event {start}")

    # --- checkpoints --------------------------------------------------------------------------

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Every checkpoint signed so far, oldest first."""
        with self.dep.store.read() as conn:
            rows = conn.execute(select(_C.c.note, _C.c.signed_at).where(
                _C.c.issuer_id == self.issuer).order_by(_C.c.size)).all()
        return [self._stored(r.note, r.signed_at) for r in rows]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self.dep.store.read() as conn:
            return self._latest_stored(conn)

    def _latest_stored(self, conn: Connection) -> SignedCheckpoint | None:
        row = conn.execute(select(_C.c.note, _C.c.signed_at).where(
            _C.c.issuer_id == self.issuer).order_by(_C.c.size.desc()).limit(1)).first()
        return None if row is None else self._stored(row.note, row.signed_at)

    def _stored(self, text: str, signed_at: int | None) -> SignedCheckpoint:
        try:
            body, _ = note.split_note(text)
            return SignedCheckpoint(note.Checkpoint.from_text(body), text, signed_at)
        except note.NoteError as e:
            raise LogError(f"a stored checkpoint is malformed: {e}") from e

    def _file_checkpoint(self) -> SignedCheckpoint | None:
        """The checkpoint file, its signature checked against the log key."""
        path = self.checkpoint_file
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise LogError(f"cannot read the log's checkpoint file {path}: {e}") from e
        try:
            opened = note.open_note(text, [self.verifier()])
            cp = note.Checkpoint.from_text(opened.text)
        except note.NoteError as e:
            raise LogError(f"{path} is not a checkpoint signed by this log's key: {e}") from e
        if cp.origin != self.origin:
            raise LogError(f"{path} is a checkpoint of {cp.origin!r}, not of {self.origin!r}")
        return SignedCheckpoint(cp, text)

    def checkpoint(self, now: datetime | None = None, *, size: int | None = None
                   ) -> SignedCheckpoint:
        """Sign a checkpoint of the tree at ``size`` (default: all of it) and keep it.

        Returns the previous checkpoint when it already covers exactly that tree, or the stored
        one of that size. The new checkpoint must extend the previous one (the larger of the
        file's and the database's): its consistency proof is checked before signing. A size below
        the latest checkpoint is signed only if a checkpoint of that size exists already.
        Raises :class:`LogBehindCheckpoint`, :class:`LogForked`, :class:`InputError`.
        """
        signer = self.signer()  # outside the transaction: reading the key may be slow
        at = to_epoch(self.dep.now(now))
        self.integrate()
        with self.dep.store.write(lock=CHECKPOINT_LOCK) as conn:
            file_cp = self._file_checkpoint()  # under the lock: no other signer is writing it
            current = tree_size(conn, self.issuer)
            size = current if size is None else size
            if not 0 <= size <= current:
                raise InputError(f"the log has {current} entries; cannot sign a checkpoint "
                                 f"of {size}", reason="bad_size")
            stored = self._latest_stored(conn)
            previous = max((c for c in (file_cp, stored) if c is not None),
                           key=lambda c: c.size, default=None)
            if previous is not None and previous.size > current:
                raise LogBehindCheckpoint(
                    f"the database's audit log has {current} entries but the log signed a "
                    f"checkpoint of {previous.size} ({self.checkpoint_file}): the database is "
                    "behind (a restored backup?)")
            root = root_at(conn, self.issuer, size)
            if previous is not None:
                self._check_extends(conn, previous, current)
                if size < previous.size:
                    row = conn.execute(select(_C.c.note, _C.c.signed_at).where(
                        _C.c.issuer_id == self.issuer, _C.c.size == size)).first()
                    if row is not None:
                        return self._stored(row.note, row.signed_at)
                    sizes = [s for (s,) in conn.execute(select(_C.c.size).where(
                        _C.c.issuer_id == self.issuer).order_by(_C.c.size))]
                    raise InputError(
                        f"the log has signed a checkpoint of {previous.size} entries already and "
                        f"signs no smaller tree; no checkpoint of {size} was signed (signed "
                        f"sizes: {', '.join(map(str, sizes[-10:]))}). Pick one of those, or a "
                        f"size of at least {previous.size}", reason="bad_size")
                if size == previous.size:
                    return previous
            checkpoint = note.Checkpoint(self.origin, size, root)
            signed = note.sign_note(checkpoint.to_text(), [signer])
            conn.execute(insert(_C).values(issuer_id=self.issuer, size=size, root=root,
                                           note=signed, signed_at=at))
            # Inside the transaction, under the writer lock: the file never goes backwards. The
            # leaves it covers were committed by earlier transactions; they are made durable
            # first (SQLite with synchronous=NORMAL has them only in an unsynced WAL), so after
            # a power cut the file never describes leaves the database no longer has (ADR 0013).
            # If this commit fails, the file still describes the committed tree.
            self.dep.store.make_durable()
            write_atomic(self.checkpoint_file, signed.encode("utf-8"))
        return SignedCheckpoint(checkpoint, signed, at)

    def _check_extends(self, conn: Connection, previous: SignedCheckpoint, current: int) -> None:
        """The tree of ``current`` leaves extends ``previous``: check its consistency proof."""
        if previous.size == 0:
            return
        new_root = root_at(conn, self.issuer, current)
        proof = [] if previous.size == current else \
            self._consistency(conn, previous.size, current)
        try:
            merkle.verify_consistency(previous.size, current, previous.root, new_root, proof)
        except merkle.ProofError as e:
            raise LogForked(
                f"the database's audit log of {current} entries is not consistent with the "
                f"checkpoint of {previous.size} the log signed ({e}): refusing to sign a "
                "forked log") from e

    def checkpoint_if_due(self, now: datetime | None = None, *, push: bool = False
                          ) -> SignedCheckpoint | None:
        """Sign a checkpoint when ``every_events`` new leaves or ``every_seconds`` have passed
        since the last one (and the tree grew). For a server to call now and then.

        With ``push`` a new checkpoint is also pushed to the witnesses (this waits for them,
        up to a few seconds each: call it off the request path)."""
        at = to_epoch(self.dep.now(now))
        self.integrate()
        with self.dep.store.read() as conn:
            size = tree_size(conn, self.issuer)
            row = conn.execute(select(_C.c.size, _C.c.signed_at).where(
                _C.c.issuer_id == self.issuer).order_by(_C.c.size.desc()).limit(1)).first()
        last_size, last_at = (0, None) if row is None else (int(row.size), int(row.signed_at))
        if size <= last_size:
            return None
        if size - last_size >= self.every_events or last_at is None or \
                at - last_at >= self.every_seconds:
            signed = self.checkpoint(now)
            if push:
                self.push_to_witnesses(signed, now)
            return signed
        return None

    # --- witnesses ----------------------------------------------------------------------------

    @property
    def witnesses_file(self) -> Path:
        return self.dep.data_dir.path / witnessing.WITNESSES_FILE

    def witnesses(self) -> list[witnessing.WitnessEndpoint]:
        """The witnesses listed in ``<data dir>/witnesses.toml`` (none without the file)."""
        return witnessing.load_witnesses(self.witnesses_file)

    def cosignatures(self, size: int) -> list[note.Signature]:
        """The witness cosignatures kept for the checkpoint of ``size`` (by witness name)."""
        with self.dep.store.read() as conn:
            rows = conn.execute(select(_W.c.signature).where(
                _W.c.issuer_id == self.issuer, _W.c.size == size)
                .order_by(_W.c.witness, _W.c.key_id)).all()
        try:
            return [note.Signature.from_line(r.signature) for r in rows]
        except note.NoteError as e:
            raise LogError(f"a stored witness cosignature is malformed: {e}") from e

    def cosigned_note(self, signed: SignedCheckpoint) -> str:
        """The signed checkpoint with every cosignature kept for it appended."""
        cosignatures = self.cosignatures(signed.size)
        if not cosignatures:
            return signed.note
        try:
            return note.add_signatures(signed.note, cosignatures)
        except note.NoteError as e:
            raise LogError(f"cannot add the cosignatures to the checkpoint: {e}") from e

    def push_to_witnesses(self, signed: SignedCheckpoint | None = None,
                          now: datetime | None = None, *,
                          witnesses: Iterable[witnessing.WitnessEndpoint] | None = None,
                          timeout: float = 5.0) -> list[PushResult]:
        """Send ``signed`` (default: the latest checkpoint) to each witness and keep what they
        cosign. Never raises for a witness's sake: each result says whether it cosigned and,
        if not, why (unreachable, refused with its HTTP status, a bad cosignature …).

        Each request carries the consistency proof from the size that witness last cosigned
        (as far as the log knows); a 409 naming another size is retried once from that size.
        """
        if signed is None:
            signed = self.latest_checkpoint()
            if signed is None:
                return []
        endpoints = self.witnesses() if witnesses is None else list(witnesses)
        text, _ = note.split_note(signed.note)
        at = to_epoch(self.dep.now(now))
        return [self._push_one(w, signed, text, at, timeout) for w in endpoints]

    def _push_one(self, w: witnessing.WitnessEndpoint, signed: SignedCheckpoint, text: str,
                  at: int, timeout: float) -> PushResult:
        v = w.verifier
        with self.dep.store.read() as conn:
            kept = conn.execute(select(_W.c.cosigned_at).where(
                _W.c.issuer_id == self.issuer, _W.c.size == signed.size, _W.c.witness == v.name,
                _W.c.key_id == v.key_id)).first()
            last = conn.execute(select(func.max(_W.c.size)).where(
                _W.c.issuer_id == self.issuer, _W.c.witness == v.name,
                _W.c.key_id == v.key_id)).scalar_one()
        if kept is not None:
            return PushResult(w, signed.size, int(kept.cosigned_at), stored=True)
        old = 0 if last is None else int(last)
        for attempt in (1, 2):
            if old > signed.size:
                return PushResult(w, signed.size, error=(
                    f"it has cosigned a checkpoint of {old} entries already, more than this "
                    f"one's {signed.size}"))
            try:
                proof = self.consistency_proof(old, signed.size)[4] \
                    if 0 < old < signed.size else []
            except InputError as e:
                return PushResult(w, signed.size, error=f"no consistency proof from {old}: {e}")
            body = cosign.request_body(old, proof, signed.note)
            try:
                status, ctype, answer = witnessing.post_checkpoint(w.url, body,
                                                                   timeout=timeout)
            except PushError as e:
                return PushResult(w, signed.size, error=str(e))
            if status == 200:
                try:
                    cosignature, stamp = cosign.read_cosignature(answer, text, v)
                except note.NoteError as e:
                    return PushResult(w, signed.size,
                                      error=f"its answer holds no valid cosignature: {e}")
                try:
                    self._keep_cosignature(signed.size, cosignature, stamp, at)
                except StoreError as e:
                    return PushResult(w, signed.size, error=f"it cosigned, but the cosignature "
                                                            f"could not be stored: {e}")
                return PushResult(w, signed.size, stamp)
            refused = witnessing.refusal(status, ctype, answer, old=old, size=signed.size,
                                         origin=self.origin)
            if refused.retry_from is not None and attempt == 1:
                old = refused.retry_from  # the witness knows where it is; retry once from there
                continue
            return PushResult(w, signed.size, error=refused.error or (
                f"HTTP 409 again: its size is {refused.retry_from}"))
        raise AssertionError("unreachable")  # pragma: no cover

    def _keep_cosignature(self, size: int, cosignature: note.Signature, stamp: int,
                          at: int) -> None:
        with self.dep.store.write() as conn:
            exists = conn.execute(select(_W.c.size).where(
                _W.c.issuer_id == self.issuer, _W.c.size == size,
                _W.c.witness == cosignature.name, _W.c.key_id == cosignature.key_id)).first()
            if exists is None:
                conn.execute(insert(_W).values(
                    issuer_id=self.issuer, size=size, witness=cosignature.name,
                    key_id=cosignature.key_id, signature=cosignature.to_line(),
                    cosigned_at=stamp, received_at=at))

    # --- proofs -------------------------------------------------------------------------------

    def ticket_leaf(self, ticket_id: str) -> tuple[int, bytes]:
        """The index and body of ``ticket_id``'s ``ticket.issued`` event.

        Raises :class:`NotFound` for an unknown ticket, and :class:`InputError` (``queued``)
        when its event is committed but not in the tree yet (an integrator is busy with it)."""
        self.integrate()
        with self.dep.store.read() as conn:
            row = conn.execute(select(_E.c.idx, _E.c.body).where(
                _E.c.issuer_id == self.issuer, _E.c.ticket_id == ticket_id,
                _E.c.type == events.TICKET_ISSUED)).first()
            waiting = row is None and conn.execute(select(_Q.c.seq).where(
                _Q.c.issuer_id == self.issuer, _Q.c.ticket_id == ticket_id,
                _Q.c.type == events.TICKET_ISSUED)).first() is not None
        if waiting:
            raise InputError(f"ticket {ticket_id!r} is recorded but not yet in the audit log's "
                             "tree (it is integrated within seconds): try again shortly",
                             reason="queued")
        if row is None:
            raise NotFound(f"no ticket {ticket_id!r} in the audit log")
        return int(row.idx), bytes(row.body)

    def prove_ticket(self, ticket_id: str, now: datetime | None = None) -> str:
        """A C2SP tlog-proof of the ticket's ``ticket.issued`` leaf, its body as ``extra``.

        Uses the latest checkpoint, or signs one when that does not cover the leaf yet.
        """
        index, body = self.ticket_leaf(ticket_id)
        latest = self.latest_checkpoint()
        if latest is None or latest.size <= index:
            latest = self.checkpoint(now)
        proof = self.inclusion_proof(index, latest.size)
        return format_tlog_proof(index, proof, self.cosigned_note(latest), extra=body)

    # --- export -------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """Every ticket key the issuer ever had, with its status and times (epoch seconds):
        the history JWKS (:meth:`~callproof.protocol.keys.KeySet.to_history_jwks`)."""
        with self.dep.store.read() as conn:
            return self.dep.key_history(conn).to_history_jwks()

    def export(self, out: Path, *, upto: int | None = None, now: datetime | None = None,
               progress: Callable[[int, int], None] | None = None) -> SignedCheckpoint:
        """Write an export bundle to ``out`` (spec/audit-log.md §5) and return its checkpoint.

        The checkpoint covers exactly the entries written: the latest one when it does, else a
        checkpoint of ``upto`` entries (see :meth:`checkpoint` for which sizes may be signed).
        ``DIR/checkpoint`` carries every witness cosignature kept for it.
        """
        signed = self.checkpoint(now, size=upto)
        out.mkdir(parents=True, exist_ok=True)
        tree = merkle.CompactRange()
        tmp = out / ".entries.jsonl.tmp"
        with open(tmp, "wb") as f:
            for body in self.entries(signed.size):
                tree.append(merkle.leaf_hash(body))
                f.write(body + b"\n")
                if progress is not None and tree.size % 10_000 == 0:
                    progress(tree.size, signed.size)
        if tree.root() != signed.root:
            tmp.unlink()
            raise LogForked(f"the events table does not give the root of the checkpoint of "
                            f"{signed.size}: the database is damaged")
        os.replace(tmp, out / "entries.jsonl")
        (out / "checkpoint").write_text(self.cosigned_note(signed), "utf-8")
        (out / "jwks.json").write_text(json.dumps(self.jwks(), indent=2) + "\n", "utf-8")
        (out / "log.vkey").write_text(self.vkey() + "\n", "utf-8")
        return signed


