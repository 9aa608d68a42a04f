"""The auditor's signature scan: the per-line work on entries.jsonl that needs no order.

For each chunk of whole lines, :class:`_Scanner` parses each event, checks that it is canonical
JSON of this log's issuer, hashes its leaf and, for a ``ticket.issued``, checks the ticket's
signature against the keys of jwks.json as they were when it was logged. None of this depends on
the lines before, so :class:`_Scans` runs it on a pool of processes (spawned; each builds its own
scanner from the raw jwks.json in :func:`_init_worker`) and hands the compact results back in
order; :func:`callproof.auditor.bundle.verify_bundle` then replays them one by one (the key
timeline, :mod:`callproof.auditor.story`). The verdict is the same on one process or many.

    >>> scanner = _Scanner({"keys": []}, "shop.example", skew=timedelta(0))
    >>> body = b'{"at":0,"data":{},"iss":"x.example","type":"ticket.closed","v":1}\\n'
    >>> hashes, count, records, bad_signatures, *_ = scanner.scan(body, first=7)
    >>> [(line, [str(f) for f in pre]) for line, pre, _, _ in records]
    [(7, ["an event of 'x.example' in the log of 'shop.example'"])]

The pool's workers import this module by name: :func:`_init_worker` and :func:`_scan_job` stay
module-level functions.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import timedelta
from typing import Any

from callproof.auditor.findings import Finding
from callproof.errors import CallproofError, TicketError
from callproof.protocol.canonical import canonical_json, parse_json_strict
from callproof.protocol.clock import from_epoch
from callproof.protocol.events import KEY_CREATED, KEY_REVOKED, TICKET_ISSUED, Event
from callproof.protocol.jws import peek_unverified_claims, peek_unverified_header
from callproof.protocol.keys import ACTIVE, RETIRED, REVOKED, KeySet
from callproof.protocol.ticket import verify_ticket

#: Jobs in flight per worker before the reader waits (bounds the memory held by tokens).
_JOBS_AHEAD = 4


class _Scanner:
    """The per-line work that does not depend on order, for a chunk of raw lines: the JSON
    parse, the canonical and shape checks, the leaf hashes, the static checks of each
    ticket.issued (its kid names a key of jwks.json not compromised when it was logged) and its
    signature. Built from the raw jwks.json, so that a worker process can build its own; the
    reading process replays the compact results in order (``bundle._replay``)."""

    def __init__(self, jwks: Any, issuer: str, skew: timedelta) -> None:
        self.keys = KeySet.from_history_jwks(jwks)[0]  # bundle.verify_bundle reports problems
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
        signatures: list[tuple[int, Finding]] = []
        sig_seconds = sig_cpu = 0.0
        issuer, keys = self.issuer, self.keys
        last = len(bodies) - 1
        for i, body in enumerate(bodies):
            line = first + i
            pre: list[Finding] = []
            if unterminated and i == last:
                pre.append(Finding.of("line.no_newline"))
            try:
                raw = parse_json_strict(body)
                event = Event.from_parsed(raw)
            except (ValueError, UnicodeDecodeError) as e:
                pre.append(Finding.of("line.not_event", error=str(e)))
                records.append((line, pre, None, None))
                continue
            if not _is_canonical(raw, body):
                pre.append(Finding.of("line.not_canonical"))
            if event.issuer != issuer:
                pre.append(Finding.of("line.other_issuer", issuer=event.issuer, log=issuer))
            kind, data_ = event.type, event.data
            ticket_id = data_.get("ticket_id")
            if kind == TICKET_ISSUED:
                if not isinstance(ticket_id, str):
                    records.append((line, pre, "I", None))
                    continue
                token = data_.get("ticket")
                dst, exp = _peek_claims(token)
                kid = _kid_of(token)
                key = keys.find(kid) if kid is not None else None
                stop = late = None
                if kid is None:
                    stop = Finding.of("ticket.not_jws", ticket=ticket_id)
                elif key is None:
                    stop = Finding.of("ticket.unknown_key", ticket=ticket_id, kid=kid)
                elif key.status == REVOKED and key.compromised_at is not None and \
                        event.at >= int(key.compromised_at.timestamp()):
                    late = Finding.of("ticket.compromised", ticket=ticket_id, kid=kid,
                                      compromised=int(key.compromised_at.timestamp()),
                                      at=event.at)
                else:
                    s0, c0 = time.perf_counter(), time.process_time()
                    bad = self._signature(ticket_id, str(token), event.at)
                    sig_seconds += time.perf_counter() - s0
                    sig_cpu += time.process_time() - c0
                    if bad is not None:
                        signatures.append((line, bad))
                records.append((line, pre, "I", (ticket_id, dst, exp, stop, kid, late)))
            elif kind.startswith(("ticket.", "alert.")) and isinstance(ticket_id, str):
                # The cause of a ticket.failed; else the channel ("voice": spec/voice-line.md).
                given = data_.get("cause", data_.get("channel"))
                records.append((line, pre, "S", (kind, ticket_id, event.at, given)))
            elif kind == KEY_CREATED:
                kid, x = data_.get("kid"), data_.get("x")
                if isinstance(kid, str) and isinstance(x, str):
                    records.append((line, pre, "C", (kid, x)))
                elif pre:
                    records.append((line, pre, None, None))
            elif kind == KEY_REVOKED and isinstance(data_.get("kid"), str):
                records.append((line, pre, "R", (data_["kid"], data_.get("compromised_at"))))
            elif pre:
                records.append((line, pre, None, None))
        return hashes, len(bodies), records, signatures, hash_seconds, sig_seconds, sig_cpu

    def _signature(self, ticket_id: str, token: str, at: Any) -> Finding | None:
        """Why the ticket does not verify against the keys when it was logged, or None."""
        try:
            claims = verify_ticket(token, self.historical, now=from_epoch(at),
                                   issuer=self.issuer, skew=self.skew)
        except TicketError as e:
            return Finding.of("ticket.bad_signature", ticket=ticket_id, outcome=e.outcome,
                              error=str(e))
        if claims.jti != ticket_id:
            return Finding.of("ticket.jti", ticket=ticket_id, jti=claims.jti)
        return None


#: One line's result: (line, failures found on it before the ordered checks, kind, fields):
#: kind "I" ticket.issued (fields None: no ticket_id; else ticket_id, dst, exp, the failure
#: that stops its checks, kid, the compromised-key failure), "S" a ticket or alert step (type,
#: ticket_id, at, cause), "C" key.created (kid, x), "R" key.revoked (kid, compromised_at), None
#: nothing more to check.
_Record = tuple[int, list[Finding], str | None, Any]
#: A chunk's results: (leaf hashes, joined or not, lines, records, signature failures
#: (line, finding), seconds hashing, seconds and CPU seconds checking signatures).
_Scan = tuple[bytes | list[bytes], int, list[_Record], list[tuple[int, Finding]], float, float,
              float]
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


def _kid_of(token: Any) -> str | None:
    """The kid named in a compact JWS header (unverified), or None."""
    header = peek_unverified_header(token)
    kid = header.get("kid") if header is not None else None
    return kid if isinstance(kid, str) else None


def _peek_claims(token: Any) -> tuple[bool | None, int | None]:
    """Whether the (unverified) ticket has a ``dst`` and its ``exp``; (None, None) if unreadable.
    Its signature is checked on its own line; here it only tells which steps the story allows."""
    claims = peek_unverified_claims(token)
    if claims is None:
        return None, None
    exp = claims.get("exp")
    return claims.get("dst") is not None, exp if type(exp) is int else None


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
