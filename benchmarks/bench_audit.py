"""Offline verification of an audit bundle: callproof's ``verify_bundle`` against the floors.

    python benchmarks/bench_audit.py              # 1,000,000 events: about 2 minutes here (2 vCPUs)
    python benchmarks/bench_audit.py --quick      # the CI smoke run: 20,000 events, about 7 s
    python benchmarks/bench_audit.py --events 200000 --json bench.json

A bundle is written to a temporary directory as an honest log would: a ``key.created`` line, then
calls of eight events each — ``ticket.issued`` (a fresh ticket with a number, signed by a test
ticket key), ``ticket.connected``, ``ticket.claimed``, ``ticket.number_confirmed``,
``ticket.verified``, ``ticket.closed``, ``lookups.failed``, ``report.filed`` — as canonical
lines (RFC 8785, built from templates and spot-checked against ``canonical_json``), with
``jwks.json``, ``log.vkey`` and a checkpoint signed by a test log key. Every ticket is distinct
and signed (a ticket's ``jti`` is its ``ticket_id``), so the bundle verifies honestly; the run
stops if it does not.

Then, in the same run:

* ``verify_bundle``: the real check, end to end, on ``os.cpu_count()`` workers; its phase
  timings give the **Merkle recomputation** (leaf hashes and tree, in the reading process) and
  the **ticket signatures** (the workers' busy time divided by their number: the pool's rate);
* ``bare hashlib loop``: ``sha256(0x00 ‖ leaf)`` over the same leaves (already in memory, no
  I/O), then the RFC 6962 tree level by level — the floor for the Merkle recomputation;
* ``CompactRange.append``: the per-leaf loop ``verify_bundle`` used before (for before/after);
* ``raw Ed25519 verify``: ``cryptography``'s verify over the tickets' signing inputs in one
  process, × the number of cores — the floor for the ticket signatures.

Aims (issue 5): Merkle recomputation ≥ 0.8× the bare loop; ticket signatures ≥ 0.8× raw verify
× cores. The benchmark reports; it never fails on a ratio (exit status 0 unless it crashes or the
bundle does not verify).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callproof import CallTicket, SigningKey, encode_ticket
from callproof.auditor.bundle import verify_bundle
from callproof.protocol.canonical import canonical_json, parse_json_strict
from callproof.protocol.clock import from_epoch
from callproof.protocol.jws import b64url_decode, b64url_encode
from callproof.protocol.keys import KeySet, TicketKey
from callproof.protocol.privacy import new_ticket_id
from callproof.protocol.ticket import verify_ticket
from callproof.tlog import merkle, note

ISSUER = "shop.example"
ORIGIN = f"{ISSUER}/callproof-log"
START = 1_790_000_000  # epoch seconds of the first event
EVENTS_PER_CALL = 8
RAW_SAMPLE = 4_000  # signatures in the raw-verify baseline (repeated until it takes ≥ 0.5 s)


def _line(type_: str, at: int, data: str) -> bytes:
    """A canonical event line; ``data`` is the canonical JSON of the data object."""
    return (f'{{"at":{at},"data":{data},"iss":"{ISSUER}","type":"{type_}","v":1}}\n'
            ).encode("ascii")


def write_bundle(directory: Path, events: int) -> dict[str, Any]:
    """Write an honest bundle of ``events`` lines; return what the baselines need."""
    key = SigningKey.generate()
    log = note.Signer.generate(ORIGIN)
    out = (directory / "entries.jsonl").open("wb")
    lines: list[bytes] = [_line("key.created", START, canonical_json(
        {"kid": key.kid, "x": key.x}).decode("ascii"))]
    signing_inputs: list[tuple[bytes, bytes]] = []
    tokens: list[tuple[str, int]] = []
    calls = (events - 1) // EVENTS_PER_CALL
    fillers = (events - 1) % EVENTS_PER_CALL
    cdh = b64url_encode(b"\x07" * 32)
    for n in range(calls):
        at = START + n  # one call a second
        tid = new_ticket_id()
        ticket = CallTicket(iss=ISSUER, jti=tid, iat=at, exp=at + 900, agent_id="a-001",
                            agent_name="Mei Lin", department="Customer Care",
                            reason="payment_failed", cdh=cdh, dst="5678", methods=("code",),
                            kid=key.kid)
        token = encode_ticket(ticket, key)
        if len(signing_inputs) < RAW_SAMPLE:
            head, _, sig = token.rpartition(".")
            signing_inputs.append((head.encode("ascii"), b64url_decode(sig)))
            tokens.append((token, at))
        t = f'{{"ticket_id":"{tid}"}}'
        lines += [
            _line("ticket.issued", at, f'{{"ticket":"{token}","ticket_id":"{tid}"}}'),
            _line("ticket.connected", at + 5, t),
            _line("ticket.claimed", at + 20, t),
            _line("ticket.number_confirmed", at + 25, t),
            _line("ticket.verified", at + 30, t),
            _line("ticket.closed", at + 60, t),
            # "minute" is the epoch second the minute starts at, as the app logs it (ADR
            # 0007: every time is epoch seconds), not a count of minutes — that read as 1970.
            _line("lookups.failed", at + 60,
                  f'{{"count":{n % 7 + 1},"minute":{at - at % 60}}}'),
            _line("report.filed", at + 61, f'{{"report_id":"r_{n}","scripts":["card_or_bank"],'
                                           '"with_number":false}'),
        ]
        if len(lines) >= 65_536:
            out.writelines(lines)
            lines = []
    lines += [_line("lookups.failed", at, f'{{"count":1,"minute":{at - at % 60}}}')
              for at in range(START + calls, START + calls + fillers)]
    out.writelines(lines)
    out.close()
    # The templates must give exactly the canonical bytes: check the first call's lines.
    with (directory / "entries.jsonl").open("rb") as f:
        for _, raw in zip(range(2 * EVENTS_PER_CALL), f, strict=False):
            if canonical_json(parse_json_strict(raw[:-1])) != raw[:-1]:
                raise SystemExit(f"a template line is not canonical: {raw[:80]!r}")
    leaves = [raw[:-1] for raw in (directory / "entries.jsonl").read_bytes().splitlines(True)]
    root = _bare_root(leaves)[0]
    cp = note.Checkpoint(ORIGIN, len(leaves), root).to_text()
    (directory / "checkpoint").write_text(note.sign_note(cp, [log]), "utf-8")
    jwk = {**key.public_jwk(), "status": "active", "created_at": START}
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}), "utf-8")
    vkey = log.verifier().to_vkey()
    (directory / "log.vkey").write_text(vkey + "\n", "utf-8")
    return {"vkey": vkey, "leaves": leaves, "tickets": calls, "key": key,
            "signing_inputs": signing_inputs, "tokens": tokens}


def _bare_root(leaves: list[bytes]) -> tuple[bytes, float]:
    """The bare loop: RFC 6962 leaf hashes, then the tree level by level (an odd last node is
    carried up, which gives the RFC 6962 tree). Returns the root and the seconds it took."""
    sha = hashlib.sha256
    start = time.perf_counter()
    level = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        pairs = iter(level)
        carry = [level[-1]] if len(level) % 2 else []
        level = [sha(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        level += carry
    root = level[0] if level else merkle.EMPTY_ROOT
    return root, time.perf_counter() - start


def _compact_range(leaves: list[bytes]) -> float:
    """The per-leaf loop verify_bundle used before: leaf_hash and CompactRange.append."""
    start = time.perf_counter()
    tree = merkle.CompactRange()
    for leaf in leaves:
        tree.append(merkle.leaf_hash(leaf))
    tree.root()
    return time.perf_counter() - start


def _raw_verify(key: SigningKey | SigningKeyX, signing_inputs: list[tuple[bytes, bytes]]) -> float:
    """Signatures per second of ``Ed25519PublicKey.verify`` in this process."""
    public: Ed25519PublicKey = Ed25519PublicKey.from_public_bytes(b64url_decode(key.x))
    done, start = 0, time.perf_counter()
    while True:
        for data, sig in signing_inputs:
            public.verify(sig, data)
        done += len(signing_inputs)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.5:
            return done / elapsed


def _raw_worker(x: str, signing_inputs: list[tuple[bytes, bytes]]) -> float:
    return _raw_verify(SigningKeyX(x), signing_inputs)


class SigningKeyX:
    """Just the public ``x`` of a key, for a worker process."""

    def __init__(self, x: str) -> None:
        self.x = x


def _raw_verify_all_cores(key: SigningKey, signing_inputs: list[tuple[bytes, bytes]],
                          cores: int) -> float:
    """Raw verify measured on ``cores`` processes at once (summed): what the cores really give
    (two hyper-threads of one core give less than twice one)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_raw_worker, [key.x] * cores, [signing_inputs[:200]] * cores))  # warm up
        return sum(pool.map(_raw_worker, [key.x] * cores, [signing_inputs] * cores))


def _ticket_verify(x: str, kid: str, tokens: list[tuple[str, int]]) -> float:
    """Tickets per second of ``verify_ticket`` — every check of spec §5 that ``verify_bundle``
    applies to a logged ticket, at the time it was logged — in this process."""
    keys = KeySet([TicketKey(kid=kid, x=x, status="active")])
    skew = timedelta(seconds=60)
    done, start = 0, time.perf_counter()
    while True:
        for token, at in tokens:
            verify_ticket(token, keys, now=from_epoch(at), issuer=ISSUER, skew=skew)
        done += len(tokens)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.5:
            return done / elapsed


def _ticket_verify_all_cores(key: SigningKey, tokens: list[tuple[str, int]], cores: int) -> float:
    """``verify_ticket`` on ``cores`` processes at once (summed), and nothing else running: the
    most the ticket-signature phase of ``verify_bundle`` can reach on this machine."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_ticket_verify, [key.x] * cores, [key.kid] * cores,
                      [tokens[:200]] * cores))  # warm up
        return sum(pool.map(_ticket_verify, [key.x] * cores, [key.kid] * cores,
                            [tokens] * cores))


def _best(fn: Callable[[], float], rounds: int) -> float:
    gc.disable()
    try:
        return min(fn() for _ in range(rounds))
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events: the CI smoke run")
    parser.add_argument("--events", type=int, help="events in the bundle (default 1,000,000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("CALLPROOF_")]:
        del os.environ[name]
    events = args.events or (20_000 if args.quick else 1_000_000)
    cores = os.cpu_count() or 1
    print(f"machine: {platform.processor() or platform.machine()}, {cores} CPUs | "
          f"{platform.python_implementation()} {platform.python_version()} | cryptography "
          f"{cryptography.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="callproof-bench-audit-"))
    try:
        t0 = time.perf_counter()
        made = write_bundle(tmp, events)
        size = (tmp / "entries.jsonl").stat().st_size
        print(f"bundle: {events:,} events, {made['tickets']:,} tickets, {size / 1e6:.0f} MB, "
              f"written in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        report = verify_bundle(tmp, log_key=made["vkey"])
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        serial = verify_bundle(tmp, log_key=made["vkey"], workers=1)
        serial_wall = time.perf_counter() - t0
        for r in (report, serial):
            if not r.ok:
                for failure in r.failures[:10]:
                    print(f"FAILED: {failure}", file=sys.stderr)
                print("the benchmark bundle does not verify", file=sys.stderr)
                return 1
        leaves: list[bytes] = made["leaves"]
        bare_root, _ = _bare_root(leaves)
        if bare_root != report.root:
            print("the bare loop's root differs from verify_bundle's", file=sys.stderr)
            return 1
        rounds = 3 if events <= 200_000 else 2
        bare = _best(lambda: _bare_root(leaves)[1], rounds)
        before = _best(lambda: _compact_range(leaves), 1)
        raw = _raw_verify(made["key"], made["signing_inputs"])
        raw_all = _raw_verify_all_cores(made["key"], made["signing_inputs"], cores)
        checks = _ticket_verify(made["key"].x, made["key"].kid, made["tokens"])
        checks_all = _ticket_verify_all_cores(made["key"], made["tokens"], cores)

        n, tickets = len(leaves), report.tickets
        t = report.timings
        merkle_rate = n / serial.timings["merkle"]  # the reading process alone on its core
        merkle_busy = n / t["merkle"]  # while the workers check signatures beside it
        bare_rate = n / bare
        before_rate = n / before
        sig_rate = tickets / t["signatures"]
        sig_cpu = tickets / t["signatures_cpu"]
        raw_cores = raw * cores
        rows = [
            (f"verify_bundle, {report.workers} worker(s)", n / wall, "events/s",
             f"{wall:.1f} s end to end"),
            ("  ticket signatures (pool)", sig_rate, "tickets/s",
             "tickets / (workers' busy seconds / workers)"),
            ("  … per worker CPU second × workers", sig_cpu, "tickets/s", ""),
            ("  Merkle, beside the workers", merkle_busy, "leaves/s", ""),
            ("  reading process (parse, canonical, story)", n / t["lines"], "events/s", ""),
            ("verify_bundle, 1 process", n / serial_wall, "events/s",
             f"{serial_wall:.1f} s end to end"),
            ("  Merkle recomputation", merkle_rate, "leaves/s", ""),
            ("  ticket signatures", tickets / serial.timings["signatures"], "tickets/s", ""),
            ("bare hashlib loop", bare_rate, "leaves/s", "leaves in memory"),
            ("CompactRange.append (before)", before_rate, "leaves/s", ""),
            ("raw Ed25519 verify, 1 process", raw, "sigs/s", ""),
            (f"raw Ed25519 verify × {cores} cores", raw_cores, "sigs/s", ""),
            (f"raw Ed25519 verify, {cores} processes at once", raw_all, "sigs/s", "measured"),
            ("verify_ticket (spec §5), 1 process", checks, "tickets/s", ""),
            (f"verify_ticket, {cores} processes at once", checks_all, "tickets/s",
             "measured: the ceiling"),
        ]
        width = max(len(r[0]) for r in rows)
        for label, rate, unit, extra in rows:
            print(f"{label:<{width}}  {rate:>12,.0f} {unit:<10} {extra}")
        ratios = [
            ("Merkle recomputation / bare loop", merkle_rate / bare_rate, 0.8),
            ("Merkle: now / before (CompactRange.append)", merkle_rate / before_rate, None),
            ("ticket signatures / (raw verify × cores)", sig_rate / raw_cores, 0.8),
            ("ticket signatures / raw verify on all cores, measured", sig_rate / raw_all, None),
            ("ceiling: verify_ticket on all cores / (raw × cores)", checks_all / raw_cores, None),
            ("ticket signatures / that ceiling", sig_rate / checks_all, None),
            ("pool speed-up of verify_bundle (1 process → pool)", serial_wall / wall, None),
        ]
        print()
        for label, value, aim in ratios:
            verdict = "" if aim is None else \
                f"  aim ≥ {aim:g}: {'met' if value >= aim else 'NOT met'}"
            print(f"{label:<54} {value:6.2f}×{verdict}")
        if args.json:
            args.json.write_text(json.dumps({
                "events": n, "tickets": tickets, "cores": cores, "workers": report.workers,
                "wall_s": wall, "serial_wall_s": serial_wall, "timings": report.timings,
                "serial_timings": serial.timings, "merkle_per_s": merkle_rate,
                "bare_per_s": bare_rate, "before_per_s": before_rate,
                "signatures_per_s": sig_rate, "raw_verify_per_s": raw,
                "raw_verify_all_cores_per_s": raw_all, "verify_ticket_per_s": checks,
                "verify_ticket_all_cores_per_s": checks_all,
                "ratios": {label: value for label, value, _ in ratios}}, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
