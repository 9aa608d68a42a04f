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
import hashlib
import hmac
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from callproof.errors import CallproofError, TicketError
from callproof.protocol import states as S
from callproof.protocol.canonical import canonical_json, parse_json_strict
from callproof.protocol.clock import from_epoch
from callproof.protocol.events import MAX_EPOCH, Event
from callproof.protocol.jws import b64url_decode
from callproof.protocol.keys import ACTIVE, RETIRED, REVOKED, KeySet, TicketKey
from callproof.protocol.ticket import CLOCK_SKEW, verify_ticket
from callproof.tlog import merkle, note
from callproof.tlog.cosign import check_quorum
from callproof.tlog.proof import ORIGIN_SUFFIX

__all__ = [
    "Failure",
    "VerifyReport",
    "load_verifier",
    "verify_bundle",
]

ENTRIES, CHECKPOINT, JWKS, VKEY = "entries.jsonl", "checkpoint", "jwks.json", "log.vkey"
_TICKET_EVENTS_BEFORE_ISSUE = "comes before its ticket.issued"

#: Tickets per job sent to a worker process; a bundle with fewer tickets than this is checked
#: in this process alone (starting the workers would cost more than it saves).
TICKETS_PER_JOB = 1_000
#: Bytes of entries.jsonl per job, per ticket of :data:`TICKETS_PER_JOB` (a ticket and its
#: events take about 1.6 kB: a job holds about a sixth of TICKETS_PER_JOB tickets).
_BYTES_PER_TICKET = 256
#: Jobs in flight per worker before the reader waits (bounds the memory held by tokens).
_JOBS_AHEAD = 4


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
                if v is not None and not (type(v) is int and 0 <= v <= MAX_EPOCH):
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


Sink = Callable[[int, str], None]
"""Reports a failure: ``sink(line, message)``."""


class _Scanner:
    """The per-line work that does not depend on order, for a chunk of raw lines: the JSON
    parse, the canonical and shape checks, the leaf hashes, the static checks of each
    ticket.issued (its kid names a key of jwks.json not compromised when it was logged) and its
    signature. Built from the raw jwks.json, so that a worker process can build its own; the
    reading process replays the compact results in order (:func:`_replay`)."""

    def __init__(self, jwks: Any, issuer: str, skew: timedelta) -> None:
        self.keys = _keys_from_jwks(jwks, VerifyReport())
        # For the check itself a revoked key verifies (as it was before revocation); whether the
        # ticket counts was decided by its compromise time first.
        self.historical = KeySet(
            replace(k, status=RETIRED if k.retired_at else ACTIVE) if k.status == REVOKED else k
            for k in self.keys.values())
        self.issuer = issuer
        self.skew = skew

    def scan(self, data: bytes, first: int, joined: bool = False) -> _Scan:
        """The results of the lines of ``data`` (whole lines, the first being line ``first``;
        only the file's last line may lack its newline). The leaf hashes are one ``bytes`` when
        ``joined`` (cheaper to send from a worker), else a list."""
        bodies = data.split(b"\n")
        unterminated = not data.endswith(b"\n")
        if not unterminated:
            bodies.pop()
        t0 = time.perf_counter()
        sha = hashlib.sha256
        digests = [sha(b"\x00" + body).digest() for body in bodies]
        hashes: bytes | list[bytes] = b"".join(digests) if joined else digests
        hash_seconds = time.perf_counter() - t0
        records: list[_Record] = []
        signatures: list[tuple[int, str]] = []
        sig_seconds = sig_cpu = 0.0
        issuer, keys = self.issuer, self.keys
        last = len(bodies) - 1
        for i, body in enumerate(bodies):
            line = first + i
            pre: list[str] = []
            if unterminated and i == last:
                pre.append("the last line does not end with a newline")
            try:
                raw = parse_json_strict(body)
                event = Event.from_parsed(raw)
            except (ValueError, UnicodeDecodeError) as e:
                pre.append(f"not a callproof v1 event ({e})")
                records.append((line, pre, None, None))
                continue
            if not _is_canonical(raw, body):
                pre.append("not canonical JSON (RFC 8785): the leaf bytes were altered")
            if event.issuer != issuer:
                pre.append(f"an event of {event.issuer!r} in the log of {issuer!r}")
            kind, data_ = event.type, event.data
            ticket_id = data_.get("ticket_id")
            if kind == "ticket.issued":
                if not isinstance(ticket_id, str):
                    records.append((line, pre, "I", None))
                    continue
                token = data_.get("ticket")
                dst, exp = _peek_claims(token)
                kid = _kid_of(token)
                key = keys.get(kid) if kid is not None else None
                stop = late = None
                if kid is None:
                    stop = f"ticket {ticket_id}: the logged ticket is not a compact JWS"
                elif key is None:
                    stop = f"ticket {ticket_id}: signed by key {kid}, which jwks.json lacks"
                elif key.status == REVOKED and key.compromised_at is not None and \
                        event.at >= int(key.compromised_at.timestamp()):
                    late = f"ticket {ticket_id}: signed by key {kid}, compromised at " \
                           f"{int(key.compromised_at.timestamp())}; logged at {event.at}, " \
                           "not before: it does not count"
                else:
                    s0, c0 = time.perf_counter(), time.process_time()
                    message = self._signature(ticket_id, str(token), event.at)
                    sig_seconds += time.perf_counter() - s0
                    sig_cpu += time.process_time() - c0
                    if message is not None:
                        signatures.append((line, message))
                records.append((line, pre, "I", (ticket_id, dst, exp, stop, kid, late)))
            elif kind.startswith(("ticket.", "alert.")) and isinstance(ticket_id, str):
                records.append((line, pre, "S", (kind, ticket_id, event.at, data_.get("cause"))))
            elif kind == "key.created":
                kid, x = data_.get("kid"), data_.get("x")
                if isinstance(kid, str) and isinstance(x, str):
                    records.append((line, pre, "C", (kid, x)))
                elif pre:
                    records.append((line, pre, None, None))
            elif kind == "key.revoked" and isinstance(data_.get("kid"), str):
                records.append((line, pre, "R", (data_["kid"], data_.get("compromised_at"))))
            elif pre:
                records.append((line, pre, None, None))
        return hashes, len(bodies), records, signatures, hash_seconds, sig_seconds, sig_cpu

    def _signature(self, ticket_id: str, token: str, at: Any) -> str | None:
        """Why the ticket does not verify against the keys when it was logged, or None."""
        try:
            claims = verify_ticket(token, self.historical, now=from_epoch(at),
                                   issuer=self.issuer, skew=self.skew)
        except TicketError as e:
            return f"ticket {ticket_id}: does not verify when logged ({e.outcome}: {e})"
        if claims.jti != ticket_id:
            return f"ticket {ticket_id}: the logged ticket's jti is {claims.jti}"
        return None


#: One line's result: (line, failures found on it before the ordered checks, kind, fields):
#: kind "I" ticket.issued (fields None: no ticket_id; else ticket_id, dst, exp, the failure
#: that stops its checks, kid, the compromised-key failure), "S" a ticket or alert step (type,
#: ticket_id, at, cause), "C" key.created (kid, x), "R" key.revoked (kid, compromised_at), None
#: nothing more to check.
_Record = tuple[int, list[str], str | None, Any]
#: A chunk's results: (leaf hashes, joined or not, lines, records, signature failures
#: (line, message), seconds hashing, seconds and CPU seconds checking signatures).
_Scan = tuple[bytes | list[bytes], int, list[_Record], list[tuple[int, str]], float, float, float]
_WORKER: _Scanner | None = None


def _init_worker(jwks: Any, issuer: str, skew: timedelta) -> None:
    global _WORKER  # noqa: PLW0603 - one scanner per worker process
    _WORKER = _Scanner(jwks, issuer, skew)


def _scan_job(data: bytes, first: int) -> _Scan:
    if _WORKER is None:  # pragma: no cover - the pool always runs the initializer
        raise RuntimeError("the worker was not initialised")
    return _WORKER.scan(data, first, joined=True)


def _chunks(f: Any, size: int) -> Iterable[tuple[bytes, int]]:
    """``(whole lines, number of the first)`` of about ``size`` bytes each."""
    first, carry = 1, b""
    while True:
        data = f.read(size)
        if not data:
            if carry:
                yield carry, first  # the last line, without its newline
            return
        buf = carry + data if carry else data
        cut = buf.rfind(b"\n") + 1
        if not cut:
            carry = buf
            continue
        chunk, carry = buf[:cut], buf[cut:]
        yield chunk, first
        first += chunk.count(b"\n")


class _Scans:
    """Chunks of lines scanned on a pool of ``workers`` processes when ``parallel``, else here;
    their results come back in order. The results (and so the verdict) are the same either
    way."""

    def __init__(self, jwks: Any, issuer: str, skew: timedelta, workers: int, parallel: bool,
                 take: Callable[[_Scan], None]) -> None:
        self.args = (jwks, issuer, skew)
        self.local = _Scanner(jwks, issuer, skew)
        self.workers = workers if parallel and workers > 1 else 1
        self.take = take
        self.pool: ProcessPoolExecutor | None = None
        self.inflight: list[tuple[Future[_Scan], bytes, int]] = []
        self.hashing = 0.0
        self.busy = 0.0
        self.cpu = 0.0
        self.waited = 0.0  # seconds the reader waited for the workers
        self.note: str | None = None
        if self.workers > 1:
            try:
                self.pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker, initargs=self.args)
            except (OSError, ValueError) as e:  # no processes here: scan them all in this one
                self.note = f"ticket signatures were checked in one process ({e})"
                self.workers = 1

    def add(self, data: bytes, first: int) -> None:
        if self.pool is None:
            self._take(self.local.scan(data, first))
            return
        while len(self.inflight) >= _JOBS_AHEAD * self.workers:
            self._collect(*self.inflight.pop(0))
        try:
            self.inflight.append((self.pool.submit(_scan_job, data, first), data, first))
        except BrokenProcessPool as e:  # a worker died: finish what is queued, go on here
            self.note = f"the worker pool broke ({e}); the rest was checked in the main process"
            while self.inflight:
                self._collect(*self.inflight.pop(0))
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
            self._take(self.local.scan(data, first))

    def _collect(self, future: Future[_Scan], data: bytes, first: int) -> None:
        waiting = time.perf_counter()
        try:
            result = future.result()
            self.waited += time.perf_counter() - waiting
        except Exception as e:  # noqa: BLE001 - a broken worker: scan its lines here instead
            self.note = f"a worker failed ({type(e).__name__}: {e}); its lines were checked " \
                        "in the main process"
            result = self.local.scan(data, first)
        self._take(result)

    def _take(self, result: _Scan) -> None:
        self.hashing += result[4]
        self.busy += result[5]
        self.cpu += result[6]
        self.take(result)

    def finish(self) -> float:
        """Wait for every chunk; the signature time per worker."""
        try:
            while self.inflight:
                self._collect(*self.inflight.pop(0))
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
        return self.busy / self.workers


class _Tree:
    """The RFC 6962 tree over a stream of leaf hashes, built in blocks: each aligned complete
    subtree of a block is hashed level by level (one list comprehension per level, no
    per-leaf method call), then merged into a compact range as :class:`merkle.CompactRange`
    does. The same roots as ``CompactRange``; a few times faster."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[tuple[int, bytes]] = []  # (height, hash), left to right

    def extend(self, hashes: list[bytes]) -> None:
        sha = hashlib.sha256
        i, n = 0, len(hashes)
        while i < n:
            pos, rest = self.size, n - i
            height = rest.bit_length() - 1
            if pos:  # the block must be aligned: no higher than the lowest set bit of pos
                height = min(height, (pos & -pos).bit_length() - 1)
            width = 1 << height
            level = hashes[i:i + width]
            while len(level) > 1:
                pairs = iter(level)
                level = [sha(b"\x01" + left + right).digest()
                         for left, right in zip(pairs, pairs, strict=False)]
            top = level[0]
            while self.stack and self.stack[-1][0] == height:
                top = sha(b"\x01" + self.stack.pop()[1] + top).digest()
                height += 1
            self.stack.append((height, top))
            self.size += width
            i += width

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        acc = self.stack[-1][1]
        for _, h in reversed(self.stack[:-1]):
            acc = merkle.node_hash(h, acc)
        return acc


_TICKET_STEP = {  # event type -> the action of states.TRANSITIONS it is
    "ticket.connected": "connected",
    "ticket.claimed": "claim",
    "ticket.number_confirmed": "number_yes",
    "ticket.number_denied": "number_no",
    "ticket.word_wrong": "word_wrong",
    "ticket.verified": "word_right",
    "alert.claimed_elsewhere": "second_client",
    "ticket.failed": "fail",
    "ticket.closed": "close",
    "ticket.revoked": "revoke",
}
_FAILS_NEXT = {"number_no": S.CAUSE_NUMBER_DENIED, "word_wrong": S.CAUSE_WRONG_WORD,
               "second_client": S.CAUSE_CLAIMED_ELSEWHERE}
_HINT = {
    "connected": "the pick-up is reported once, while the ticket is live",
    "claim": "a ticket is claimed once, by one device, while it is issued or connected",
    "number_yes": "the phone question comes right after ticket.claimed, for a ticket with a "
                  "number (dst)",
    "number_no": "the phone question comes right after ticket.claimed, for a ticket with a "
                 "number (dst)",
    "word_right": "the check word comes after ticket.claimed and, for a ticket with a number "
                  "(dst), after ticket.number_confirmed",
    "word_wrong": "the check word comes after ticket.claimed and, for a ticket with a number "
                  "(dst), after ticket.number_confirmed",
    "second_client": "a second device can only meet a claimed ticket",
    "close": "a closed ticket is not closed again",
    "revoke": "only a live ticket is revoked",
}
_CAUSE_EVENT = {S.CAUSE_NUMBER_DENIED: "ticket.number_denied",
                S.CAUSE_WRONG_WORD: "ticket.word_wrong",
                S.CAUSE_CLAIMED_ELSEWHERE: "alert.claimed_elsewhere"}


class _Ticket:
    __slots__ = ("connected", "dst", "exp", "line", "pending", "since", "state")

    def __init__(self, line: int, dst: bool | None, exp: int | None) -> None:
        self.state = S.ISSUED
        self.since = line  # the line of the event that put it in its state
        self.line = line  # its ticket.issued
        self.dst = dst  # None: unknown (an unreadable ticket, refused on its own line)
        self.exp = exp
        self.connected: int | None = None
        self.pending: tuple[str, int] | None = None  # a ticket.failed cause that must come next


class _Story:
    """Each ticket's events must be a walk of the state machine (callproof-v1.md §6,
    :data:`callproof.protocol.states.TRANSITIONS`), read from the log alone."""

    def __init__(self, fail: Sink) -> None:
        self.fail = fail
        self.tickets: dict[str, _Ticket] = {}

    def issued(self, ticket_id: str, line: int, dst: bool | None, exp: int | None) -> None:
        self.tickets.setdefault(ticket_id, _Ticket(line, dst, exp))

    def step(self, kind: str, at: Any, given: Any, ticket_id: str, line: int) -> None:
        action = _TICKET_STEP.get(kind)
        t = self.tickets.get(ticket_id)
        if action is None or t is None:
            return  # alerts and reveals change no state
        what = f"{kind} of ticket {ticket_id}"
        if t.pending is not None and action != "fail":
            cause, at_line = t.pending
            self.fail(at_line, f"{_CAUSE_EVENT[cause]} of ticket {ticket_id} is not followed by "
                               f"its ticket.failed (cause {cause}): line {line} is {kind}")
            t.pending = None
        state = t.state
        if state in S.LIVE and t.exp is not None and at >= t.exp:
            state = S.EXPIRED
        if action == "fail":
            if t.pending is None:
                self.fail(line, f"{what} (cause {given}) is impossible: a ticket fails only "
                                "right after ticket.number_denied, ticket.word_wrong or "
                                f"alert.claimed_elsewhere (the ticket is {state} since line "
                                f"{t.since})")
            elif t.pending[0] != given:
                self.fail(line, f"{what} gives the cause {given}, but it follows "
                                f"{_CAUSE_EVENT[t.pending[0]]} (line {t.pending[1]}): the cause "
                                f"is {t.pending[0]}")
            t.pending = None
            t.state, t.since = S.FAILED, line
            return
        problem = self._refused(t, state, action, at)
        if problem is not None:
            self.fail(line, f"{what} is impossible: the ticket is {state} since line {t.since}; "
                            + problem)
            return
        if action == "connected":
            t.connected = line
            new = S.TRANSITIONS.get((state, action), state)
        elif action == "close" and state in (S.FAILED, S.REVOKED):
            new = state  # the hang-up is recorded; the end stays what it was
        else:
            new = S.TRANSITIONS[(state, action)]
        if action in _FAILS_NEXT:
            t.pending = (_FAILS_NEXT[action], line)
        if new != t.state:
            t.state, t.since = new, line

    @staticmethod
    def _refused(t: _Ticket, state: str, action: str, at: int) -> str | None:
        """Why this step cannot happen now, or None."""
        if state == S.FAILED and action != "close":
            return "nothing but ticket.closed follows ticket.failed"
        if state == S.REVOKED and action != "close":
            return "nothing but ticket.closed follows ticket.revoked"
        if state == S.CLOSED:
            return "nothing follows ticket.closed"
        if state == S.EXPIRED and action != "close":
            return f"it expired at {t.exp} (logged at {at}); only ticket.closed follows expiry"
        if action == "connected":
            if t.connected is not None:
                return f"the pick-up was already reported on line {t.connected}; " \
                       "ticket.connected comes at most once"
            return None  # at any live state (the reveal of enrolled proofs needs it)
        if action == "close" and state in (S.FAILED, S.REVOKED):
            return None
        if action in ("number_yes", "number_no") and t.dst is False:
            return "the ticket has no number (dst), so there is no phone question"
        if action in ("word_right", "word_wrong") and state == S.CLAIMED and t.dst is True:
            return "the ticket has a number (dst): ticket.number_confirmed must come before " \
                   "the check word"
        if (state, action) not in S.TRANSITIONS:
            return _HINT[action]
        return None

    def finish(self) -> None:
        for ticket_id, t in self.tickets.items():
            if t.pending is not None:
                cause, line = t.pending
                self.fail(line, f"{_CAUSE_EVENT[cause]} of ticket {ticket_id} is not followed by "
                                f"its ticket.failed (cause {cause})")


def _peek_claims(token: Any) -> tuple[bool | None, int | None]:
    """Whether the (unverified) ticket has a ``dst`` and its ``exp``; (None, None) if unreadable.
    Its signature is checked on its own line; here it only tells which steps the story allows."""
    if not isinstance(token, str):
        return None, None
    parts = token.split(".")
    if len(parts) != 3:
        return None, None
    try:
        claims = parse_json_strict(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError, CallproofError):
        return None, None
    if not isinstance(claims, dict):
        return None, None
    exp = claims.get("exp")
    return claims.get("dst") is not None, exp if type(exp) is int else None


def verify_bundle(directory: str | os.PathLike[str], *, log_key: str | note.Verifier | None = None,
                  previous: str | bytes | None = None, skew: timedelta = CLOCK_SKEW,
                  progress: Callable[[int], None] | None = None,
                  witnesses: Sequence[str | note.Verifier] = (),
                  quorum: int | None = None, workers: int | None = None) -> VerifyReport:
    """Check a bundle from its files alone (spec/audit-log.md §6).

    ``log_key`` pins the log's verifier key (without it the bundle's own ``log.vkey`` is used,
    with a warning); ``previous`` is an earlier signed checkpoint the auditor kept, whose tree
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
        jwks = parse_json_strict((path / JWKS).read_bytes())
    except (OSError, ValueError) as e:
        report.fail(f"{JWKS}: cannot be read ({e})")
        jwks = {"keys": []}
    keys = _keys_from_jwks(jwks, report)
    prev = _open_checkpoint(previous, pinned, "the previous checkpoint", report) \
        if previous is not None else None

    # 4. Every line, streamed in chunks: its leaf, its shape and its ticket's signature (on a
    # pool of processes), then, here and in order, its place in the key timeline and the story.
    # Failures are sorted by line, then by the order in which one process checking everything
    # in turn would have found them.
    found: list[tuple[int, int, int, str]] = []  # (line, 0 here / 1 signature, seq, message)

    def here(line: int, message: str) -> None:
        found.append((line, 0, len(found), message))

    def signature(line: int, message: str) -> None:
        found.append((line, 1, len(found), message))

    try:
        f = open(path / ENTRIES, "rb")
        big = os.fstat(f.fileno()).st_size >= TICKETS_PER_JOB * 1_000
    except OSError as e:
        report.fail(f"{ENTRIES}: cannot be read ({e})")
        return report
    count = workers if workers is not None else os.cpu_count() or 1
    story = _Story(here)
    tree = _Tree()
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
        for line_no, message in bad_signatures:
            signature(line_no, message)
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
    report.failures.extend(Failure(message, line_no) for line_no, _, _, message in sorted(found))
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
    report.timings["total"] = time.perf_counter() - started
    return report


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


def _replay(record: _Record, fail: Sink, keys: dict[str, TicketKey], story: _Story,
            created: dict[str, str], issued: dict[str, int],
            revoked: dict[str, tuple[int, Any]]) -> None:
    """The checks of one line that depend on the lines before it, in order, after the
    failures its scan found (the same failures, in the same order, as checking it whole)."""
    line, pre, kind, fields = record
    for message in pre:
        fail(line, message)
    if kind == "S":
        event_type, ticket_id, at, cause = fields
        if ticket_id not in issued:
            fail(line, f"{event_type} of ticket {ticket_id} {_TICKET_EVENTS_BEFORE_ISSUE}")
        else:
            story.step(event_type, at, cause, ticket_id, line)
    elif kind == "I":
        if fields is None:
            fail(line, "ticket.issued without a ticket_id")
            return
        ticket_id, dst, exp, stop, kid, late = fields
        if ticket_id in issued:
            fail(line, f"ticket {ticket_id} is issued a second time (first on line "
                       f"{issued[ticket_id]})")
        else:
            story.issued(ticket_id, line, dst, exp)
        issued.setdefault(ticket_id, line)
        if stop is not None:
            fail(line, stop)
            return
        if kid not in created:
            fail(line, f"ticket {ticket_id}: signed by key {kid}, which the log had not "
                       "created before this line")
        if late is not None:
            fail(line, late)
    elif kind == "C":
        kid, x = fields
        known = keys.get(kid)
        if known is None or known.x != x:
            fail(line, f"key {kid} created in the log is not in jwks.json")
        created[kid] = x
    elif kind == "R":
        kid, compromised_at = fields
        revoked[kid] = (line, compromised_at)


_SAFE_INT = 2**53 - 1
_DUMPS = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                          separators=(",", ":")).encode


def _plain(value: Any) -> bool:
    """Only strings, safe integers, booleans, null, lists and objects: JSON whose RFC 8785
    form :mod:`json` writes byte for byte when it is also ASCII (no floats to format, no
    UTF-16 key order to differ from code point order)."""
    if isinstance(value, str) or value is None or value is True or value is False:
        return True
    if type(value) is int:
        return -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False


def _is_canonical(raw: Any, body: bytes) -> bool:
    """Whether ``body`` is exactly the RFC 8785 form of ``raw`` (parsed from it). For an ASCII
    body of plain values the standard library's encoder writes the same bytes as RFC 8785
    (sorted keys, no whitespace, the same escapes), several times faster; anything else, and
    any mismatch, is decided by :func:`canonical_json` itself."""
    if body.isascii() and _plain(raw) and _DUMPS(raw).encode("utf-8") == body:
        return True
    try:
        return canonical_json(raw) == body
    except (ValueError, CallproofError):
        return False


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- one inclusion proof -----------------------------------------------------------------------


