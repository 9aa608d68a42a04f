"""Check an export bundle offline, from its files alone — no store needed.

A bundle (spec/audit-log.md §5) is a directory holding ``entries.jsonl`` (one event body per
line, leaf 0 first), ``checkpoint`` (the log's signed note of exactly that many entries),
``jwks.json`` (every ticket key with its status and times) and ``log.vkey``. The checkpoint
may carry witness cosignatures; given the witnesses' keys, a quorum of them is required.

    >>> report = verify_bundle("bundle/", log_key="shop.example/callproof-log+1a2b3c4d+AQ…",
    ...                        witnesses=["w.example/w1+…+BA…", "w.example/w2+…+BA…"], quorum=2)
    >>> report.ok, [str(f) for f in report.failures]
    (True, [])

:func:`verify_bundle` checks what spec/audit-log.md §6 lists. The per-line work that needs no
order (parsing, leaf hashes, ticket signatures) is done by :mod:`callproof.auditor.scan`, on a
pool of processes for a big bundle; the checks that need the lines before are replayed here, line
by line, each ticket's story by :mod:`callproof.auditor.story`. A single tlog-proof is checked by
:mod:`callproof.tlog.proof`.
"""

from __future__ import annotations

import base64
import hmac
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from callproof.auditor.findings import Finding
from callproof.auditor.scan import _chunks, _Record, _Scan, _Scans
from callproof.auditor.story import Sink, _Story
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.keys import REVOKED, KeySet, TicketKey
from callproof.protocol.ticket import CLOCK_SKEW
from callproof.tlog import merkle, note
from callproof.tlog.cosign import QuorumError, check_quorum
from callproof.tlog.proof import ORIGIN_SUFFIX

__all__ = [
    "NOT_PINNED",
    "Failure",
    "VerifyReport",
    "load_verifier",
    "verify_bundle",
]

ENTRIES, CHECKPOINT, JWKS, VKEY = "entries.jsonl", "checkpoint", "jwks.json", "log.vkey"

#: Tickets per job sent to a worker process; a bundle with fewer tickets than this is checked
#: in this process alone (starting the workers would cost more than it saves).
TICKETS_PER_JOB = 1_000
#: Bytes of entries.jsonl per job, per ticket of :data:`TICKETS_PER_JOB` (a ticket and its
#: events take about 1.6 kB: a job holds about a sixth of TICKETS_PER_JOB tickets).
_BYTES_PER_TICKET = 256


@dataclass(frozen=True)
class Failure:
    """One thing that does not hold: ``finding`` says what (by key, so that the report can say
    it in its reader's language; plain text is shown as it is); ``line`` is the 1-based line of
    entries.jsonl, if any."""

    finding: Finding | str
    line: int | None = None

    @property
    def message(self) -> str:
        """The finding in English, as the command line prints it."""
        return str(self.finding)

    @property
    def code(self) -> str | None:
        """The finding's key (``tree.root``, ``story.impossible``, …), stable across versions
        and languages; None for plain text."""
        return self.finding.key if isinstance(self.finding, Finding) else None

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
    #: What weakens the verdict without failing it (``str()`` of each is its English).
    warnings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cosigned_by: list[str] = field(default_factory=list)  # the given witnesses that cosigned
    #: The log key was the auditor's (``log_key``), not taken from the bundle: only then does
    #: a bundle that verifies show the company's log, not merely a bundle that agrees with
    #: itself.
    pinned: bool = False
    #: Seconds spent per phase: ``merkle`` (leaf hashes, where they were computed, and the
    #: tree), ``lines`` (the reading process's own work: with workers, the tree and the ordered
    #: checks — key timeline, story; alone, also parsing and shape; includes ``merkle``),
    #: ``signatures`` (ticket signatures, per worker: the workers' busy time divided by their
    #: number),
    #: ``signatures_cpu`` (the same in CPU time, which leaves out the time a worker waited for
    #: a core) and ``total``; ``workers`` processes checked the signatures (1: this process).
    timings: dict[str, float] = field(default_factory=dict)
    workers: int = 1

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, key: str, line: int | None = None, **params: Any) -> None:
        """Record the finding ``key`` (a ``v.<key>`` of the report's words) with its values."""
        self.failures.append(Failure(Finding.of(key, **params), line))

    def warn(self, key: str, **params: Any) -> None:
        self.warnings.append(Finding.of(key, **params))


def load_verifier(value: str) -> note.Verifier:
    """A note verifier key given as the ``name+hex8+base64`` string or a file holding it."""
    text = value
    if "+" not in value or os.path.isfile(value):
        try:
            text = Path(value).read_text("utf-8").strip()
        except OSError as e:
            raise note.NoteError(f"cannot read the verifier key file {value}: {e}") from e
    return note.Verifier.parse(text.strip())


#: The failure of a bundle checked without a pinned log key (spec/audit-log.md §6 step 1).
NOT_PINNED = str(Finding.of("key.not_pinned"))


def verify_bundle(directory: str | os.PathLike[str], *, log_key: str | note.Verifier | None = None,
                  previous: str | bytes | None = None, skew: timedelta = CLOCK_SKEW,
                  progress: Callable[[int], None] | None = None,
                  witnesses: Sequence[str | note.Verifier] = (),
                  quorum: int | None = None, workers: int | None = None,
                  trust_bundle_key: bool = False) -> VerifyReport:
    """Check a bundle from its files alone (spec/audit-log.md §6).

    ``log_key`` pins the log's verifier key. Without it the bundle does not verify (a failure
    says the key was not pinned: a fabricated bundle signs itself), unless ``trust_bundle_key``
    says to use the bundle's own ``log.vkey`` — then it may verify, with a warning, and the
    report's :attr:`~VerifyReport.pinned` is false. The other steps run either way, with the
    bundle's key. ``previous`` is an earlier signed checkpoint the auditor kept, whose tree
    the bundle must extend. ``witnesses`` are the cosignature (type 0x04) keys of the witnesses
    the auditor trusts; at least ``quorum`` distinct ones of them (default: all) must have
    cosigned the checkpoint. Without witnesses no quorum is checked (a note says so).
    ``progress`` is called with the number of lines read so far. The per-line work that needs no
    order (parsing, canonical and shape checks, leaf hashes, ticket signatures) is done by
    ``workers`` processes (default ``os.cpu_count()``) when entries.jsonl holds at least
    :data:`TICKETS_PER_JOB` kB, else in this process; the failures are the same either way.
    """
    started = time.perf_counter()
    path = Path(directory)
    report = VerifyReport()

    # 1. The pinned log key.
    bundle_vkey: note.Verifier | None = None
    try:
        bundle_vkey = note.Verifier.parse((path / VKEY).read_text("utf-8").strip())
    except (OSError, UnicodeDecodeError, note.NoteError) as e:
        report.warn("file.unreadable", file=VKEY, error=str(e))
    if log_key is None:
        pinned = bundle_vkey
        if not trust_bundle_key:
            report.fail("key.not_pinned")
        elif pinned is not None:
            report.warn("key.bundle_trusted")
    else:
        report.pinned = True
        try:
            pinned = log_key if isinstance(log_key, note.Verifier) else load_verifier(log_key)
        except note.NoteError as e:
            report.fail("key.pinned_refused", error=str(e))
            return report
        if bundle_vkey is not None and bundle_vkey != pinned:
            report.warn("key.vkey_differs")
    if pinned is None:
        report.fail("key.none")
        return report
    if not pinned.name.endswith(ORIGIN_SUFFIX):
        report.warn("key.foreign_name", name=pinned.name)
    issuer = pinned.name.removesuffix(ORIGIN_SUFFIX)

    # 2. The checkpoint, signed by the pinned key, of this log.
    checkpoint = _open_checkpoint(path / CHECKPOINT, pinned, "what.checkpoint", report)
    report.checkpoint = checkpoint
    if witnesses or quorum is not None:
        _quorum(path / CHECKPOINT, checkpoint, witnesses, quorum, report)
    else:
        report.notes.append("no witness keys were given (--witness): no witness quorum was "
                            "checked, so only the log vouches that everyone was shown this "
                            "history")

    # 3. The keys.
    try:
        jwks = parse_json_strict((path / JWKS).read_bytes())
    except (OSError, ValueError) as e:
        report.fail("file.unreadable", file=JWKS, error=str(e))
        jwks = {"keys": []}
    keyset, problems = KeySet.from_history_jwks(jwks)
    for problem in problems:
        if problem.index is None:
            report.fail("jwks.shape", file=JWKS)
        else:
            report.fail("jwks.key_refused", file=JWKS, n=problem.index, error=problem.reason)
    keys = dict(keyset)
    prev = _open_checkpoint(previous, pinned, "what.previous", report) \
        if previous is not None else None

    # 4. Every line, streamed in chunks: its leaf, its shape and its ticket's signature (on a
    # pool of processes), then, here and in order, its place in the key timeline and the story.
    # Failures are sorted by line, then by the order in which one process checking everything
    # in turn would have found them.
    found: list[tuple[int, int, int, Finding]] = []  # (line, 0 here / 1 signature, seq, what)

    def here(line: int, finding: Finding) -> None:
        found.append((line, 0, len(found), finding))

    def signature(line: int, finding: Finding) -> None:
        found.append((line, 1, len(found), finding))

    try:
        f = open(path / ENTRIES, "rb")
        big = os.fstat(f.fileno()).st_size >= TICKETS_PER_JOB * 1_000
    except OSError as e:
        report.fail("file.unreadable", file=ENTRIES, error=str(e))
        return report
    count = workers if workers is not None else os.cpu_count() or 1
    story = _Story(here)
    tree = merkle.CompactRange()
    wanted = sorted({cp.size for cp in (checkpoint, prev) if cp is not None})
    roots = {0: merkle.EMPTY_ROOT}
    created: dict[str, str] = {}  # kid -> x, from key.created events so far
    issued: dict[str, int] = {}
    revoked_in_log: dict[str, tuple[int, Any]] = {}
    merkle_seconds = 0.0
    line = 0

    def take(result: _Scan) -> None:
        nonlocal merkle_seconds, line
        joined, n, records, bad_signatures, _, _, _ = result
        t0 = time.perf_counter()
        hashes = joined if isinstance(joined, list) else \
            [joined[i:i + 32] for i in range(0, len(joined), 32)]
        start = tree.size
        for cut in [w - start for w in wanted if start < w < start + n]:
            tree.extend(hashes[tree.size - start:cut])
            roots[tree.size] = tree.root()
        tree.extend(hashes[tree.size - start:])
        roots[tree.size] = tree.root()
        merkle_seconds += time.perf_counter() - t0
        for record in records:
            _replay(record, here, keys, story, created, issued, revoked_in_log)
        for line_no, finding in bad_signatures:
            signature(line_no, finding)
        line += n
        if progress is not None:
            progress(line)

    with f:
        scans = _Scans(jwks, issuer, skew, count, big, take)
        try:
            for data, first in _chunks(f, max(TICKETS_PER_JOB * _BYTES_PER_TICKET, 1)):
                scans.add(data, first)
            report.timings["signatures"] = scans.finish()
            report.timings["signatures_cpu"] = scans.cpu / scans.workers
            story.finish()
        finally:
            if scans.pool is not None:
                scans.pool.shutdown(cancel_futures=True)
    merkle_seconds += scans.hashing
    report.timings["merkle"] = merkle_seconds
    # The reader's own time: the signature time when it checked them itself, the time it
    # waited for the workers otherwise.
    report.timings["lines"] = time.perf_counter() - started - (
        report.timings["signatures"] if scans.pool is None else scans.waited)
    report.workers = scans.workers
    if scans.note:
        report.notes.append(scans.note)
    report.failures.extend(Failure(finding, line_no) for line_no, _, _, finding in
                           sorted(found, key=lambda x: x[:3]))
    report.entries = tree.size
    report.tickets = len(issued)
    report.root = tree.root()
    root_at_checkpoint = roots.get(checkpoint.size) if checkpoint is not None else None
    root_at_previous = roots.get(prev.size) if prev is not None else None
    if progress is not None:
        progress(line)

    # 5. The keys the log names agree with jwks.json.
    for kid, (line_no, compromised_at) in revoked_in_log.items():
        key = keys.get(kid)
        if key is None or key.status != REVOKED:
            report.fail("key.revoked_only_in_log", line_no, kid=kid)
        elif key.compromised_at is None or \
                int(key.compromised_at.timestamp()) != compromised_at:
            report.fail("key.compromise_differs", line_no, kid=kid, at=compromised_at)

    # 6. The tree against the checkpoint.
    if checkpoint is not None:
        n, size = tree.size, checkpoint.size
        if n < size:
            report.fail("tree.missing", file=ENTRIES, n=n, size=size, missing=size - n)
        elif n > size:
            report.fail("tree.extra", size + 1, first=size + 1, n=n, size=size)
        if root_at_checkpoint is not None and \
                not hmac.compare_digest(root_at_checkpoint, checkpoint.root):
            report.fail("tree.root", size=size, root=_b64(root_at_checkpoint),
                        expected=_b64(checkpoint.root))

    # 7. Append-only: the bundle extends the checkpoint the auditor kept.
    if prev is not None and checkpoint is not None:
        if prev.size > checkpoint.size:
            report.fail("previous.backwards", size=prev.size, now=checkpoint.size)
        elif prev.size == checkpoint.size and prev.root != checkpoint.root:
            report.fail("previous.fork", size=prev.size)
        elif root_at_previous is not None and \
                not hmac.compare_digest(root_at_previous, prev.root):
            report.fail("previous.rewritten", size=prev.size)
    report.timings["total"] = time.perf_counter() - started
    return report


def _quorum(source: Path, checkpoint: note.Checkpoint | None,
            witnesses: Sequence[str | note.Verifier], quorum: int | None,
            report: VerifyReport) -> None:
    """Step 2b: at least ``quorum`` of the given witnesses cosigned the bundle's checkpoint."""
    if not witnesses:
        report.fail("quorum.no_keys")
        return
    keys: list[note.Verifier] = []
    for value in witnesses:
        try:
            keys.append(value if isinstance(value, note.Verifier) else load_verifier(value))
        except note.NoteError as e:
            report.fail("quorum.key_refused", error=str(e))
            return
    if checkpoint is None:
        return  # already failed: nothing to count cosignatures on
    try:
        good, problems = check_quorum(source.read_bytes(), keys, quorum)
    except QuorumError as e:
        problems = e.problems
        if e.good is None:
            report.fail("quorum.impossible", need=e.need, given=e.given)
        else:
            report.fail("quorum.not_met", good=len(e.good), given=e.given, need=e.need,
                        cosigned=", ".join(w.name for w in e.good) or "—",
                        error="; ".join(map(str, e.problems)))
        good = e.good or []
    except (OSError, note.NoteError) as e:
        report.fail("quorum.unreadable", error=str(e))
        return
    report.cosigned_by = [w.name for w in good]
    for p in problems:
        if p.error is None:
            report.warn("witness.missing", witness=p.witness)
        else:
            report.warn("witness.invalid", witness=p.witness, error=p.error)


def _open_checkpoint(source: Path | str | bytes, pinned: note.Verifier, what: str,
                     report: VerifyReport) -> note.Checkpoint | None:
    if isinstance(source, Path):
        try:
            text: str | bytes = source.read_bytes()
        except OSError as e:
            report.fail("file.unreadable", file=source.name, error=str(e))
            return None
    else:
        text = source
    try:
        opened = note.open_note(text, [pinned])
        cp = note.Checkpoint.from_text(opened.text)
    except note.NoteError as e:
        report.fail("checkpoint.unsigned", what=Finding.of(what), name=pinned.name,
                    key_id=f"{pinned.key_id:08x}", error=str(e))
        return None
    if cp.origin != pinned.name:
        report.fail("checkpoint.other_log", what=Finding.of(what), origin=cp.origin,
                    name=pinned.name)
        return None
    return cp


def _replay(record: _Record, fail: Sink, keys: dict[str, TicketKey], story: _Story,
            created: dict[str, str], issued: dict[str, int],
            revoked: dict[str, tuple[int, Any]]) -> None:
    """The checks of one line that depend on the lines before it, in order, after the
    failures its scan found (the same failures, in the same order, as checking it whole)."""
    line, pre, kind, fields = record
    for finding in pre:
        fail(line, finding)
    if kind == "S":
        event_type, ticket_id, at, cause = fields
        if ticket_id not in issued:
            fail(line, Finding.of("story.before_issue", kind=event_type, ticket=ticket_id))
        else:
            story.step(event_type, at, cause, ticket_id, line)
    elif kind == "I":
        if fields is None:
            fail(line, Finding.of("ticket.no_id"))
            return
        ticket_id, dst, exp, stop, kid, late = fields
        if ticket_id in issued:
            fail(line, Finding.of("ticket.issued_twice", ticket=ticket_id,
                                  first=issued[ticket_id]))
        else:
            story.issued(ticket_id, line, dst, exp)
        issued.setdefault(ticket_id, line)
        if stop is not None:
            fail(line, stop)
            return
        if kid not in created:
            fail(line, Finding.of("ticket.key_not_created", ticket=ticket_id, kid=kid))
        if late is not None:
            fail(line, late)
    elif kind == "C":
        kid, x = fields
        known = keys.get(kid)
        if known is None or known.x != x:
            fail(line, Finding.of("key.created_unknown", kid=kid))
        created[kid] = x
    elif kind == "R":
        kid, compromised_at = fields
        revoked[kid] = (line, compromised_at)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
