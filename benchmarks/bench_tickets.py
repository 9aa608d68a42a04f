"""Ticket throughput: callproof against raw Ed25519 and joserfc, and issuing end to end.

    python benchmarks/bench_tickets.py              # about a minute
    python benchmarks/bench_tickets.py --quick      # the CI smoke run, well under 15 s
    python benchmarks/bench_tickets.py --seconds 120 --json bench.json

What is measured, each as operations per second over fixed-size batches:

* ``raw sign`` / ``raw verify``: ``cryptography``'s Ed25519 over the exact signing input of the
  ticket below (about 450 bytes) — the floor no JWS library can go under;
* ``ticket encode`` / ``ticket verify``: :func:`callproof.encode_ticket` and
  :func:`callproof.verify_ticket` (against a :class:`callproof.KeySet`) of a ticket shaped like
  the ones :meth:`callproof.Issuer.issue` makes;
* ``joserfc encode`` / ``joserfc verify``: the same header, claims and key through joserfc's
  ``jwt.encode`` / ``jwt.decode`` with the RFC 9864 ``Ed25519`` algorithm;
* ``issue``: :meth:`callproof.Issuer.issue` end to end on a fresh SQLite data dir in a temporary
  directory — the write transaction, the ticket, the live code and the ``ticket.issued`` event.

The benchmarks run round-robin (one batch of each per round, the order rotating) until the time
budget is spent, so a slow spell of a shared machine hits all of them alike; each figure is the
best round. The garbage collector is off inside a batch, as :mod:`timeit` does. ``CALLPROOF_*``
environment variables are cleared first so the run never touches a configured deployment.

The benchmark reports; it never fails on a ratio (exit status 0 unless it crashes).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import callproof
from callproof import (
    CallTicket,
    Issuer,
    KeySet,
    SigningKey,
    TicketKey,
    encode_ticket,
    init_data_dir,
    verify_ticket,
)
from callproof.protocol.clock import to_epoch
from callproof.protocol.jws import b64url_encode
from callproof.protocol.privacy import new_ticket_id

#: Measurement budget in seconds (setup and warm-up come on top: about a second).
FULL_SECONDS = 57.0
QUICK_SECONDS = 8.0
#: Every benchmark gets at least this many measured rounds, whatever the budget.
MIN_ROUNDS = 3

TYP = "callproof+jwt"
PHONE = "+886912345678"

#: Runs its operation ``n`` times.
Batch = Callable[[int], None]


@dataclass
class Bench:
    key: str
    label: str
    batch: int  # operations per timed batch: fixed, the same in --quick and full runs
    run: Batch
    samples: list[float] = field(default_factory=list)  # seconds per batch, one per round

    @property
    def best_us(self) -> float:
        return min(self.samples) / self.batch * 1e6

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / self.batch * 1e6

    @property
    def ops_per_s(self) -> float:
        return 1e6 / self.best_us


@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    numerator: str  # bench keys; the ratio is of their ops/s
    denominator: str
    aim: float | None = None
    strict: bool = False  # the aim is "> aim" rather than ">= aim"

    def value(self, benches: dict[str, Bench]) -> float | None:
        top, bottom = benches.get(self.numerator), benches.get(self.denominator)
        if top is None or bottom is None:
            return None
        return top.ops_per_s / bottom.ops_per_s

    def meets(self, value: float | None) -> bool | None:
        if value is None or self.aim is None:
            return None
        return value > self.aim if self.strict else value >= self.aim

    def aim_text(self) -> str:
        if self.aim is None:
            return ""
        return f"{'>' if self.strict else '≥'} {self.aim:g}"


RATIOS = (
    Ratio("verify_vs_raw", "ticket verify / raw verify", "ticket_verify", "raw_verify", 0.9),
    Ratio("verify_vs_joserfc", "ticket verify / joserfc verify", "ticket_verify",
          "joserfc_verify", 1.0, strict=True),
    Ratio("encode_vs_raw", "ticket encode / raw sign", "ticket_encode", "raw_sign"),
    Ratio("encode_vs_joserfc", "ticket encode / joserfc encode", "ticket_encode",
          "joserfc_encode", 1.0),
    Ratio("issue_vs_raw", "issue / raw sign", "issue", "raw_sign", 0.075),
)


# --- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text("utf-8", errors="replace")
    except OSError:
        text = ""
    for wanted in ("model name", "hardware", "cpu model", "processor"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == wanted and value.strip() and not value.strip().isdigit():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def openssl_version() -> str:
    try:
        from cryptography.hazmat.backends.openssl import backend

        return str(backend.openssl_version_text())
    except (ImportError, AttributeError):
        return "OpenSSL ?"


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cryptography": cryptography.__version__,
        "openssl": openssl_version(),
        "sqlite": sqlite3.sqlite_version,
        "callproof": callproof.__version__,
        "joserfc": _joserfc_version(),
        "platform": platform.platform(terse=True),
    }


def machine_line(m: dict[str, Any]) -> str:
    cpus = f"{m['cpus']} CPUs" + (f" ({m['cpus_usable']} usable)"
                                  if m["cpus_usable"] not in (None, m["cpus"]) else "")
    return (f"machine: {m['cpu']}, {cpus} | {m['python']} | cryptography {m['cryptography']}, "
            f"{m['openssl']} | SQLite {m['sqlite']}")


def _joserfc_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("joserfc")
    except PackageNotFoundError:
        return None


# --- what is measured -------------------------------------------------------------------------


def realistic_ticket(key: SigningKey, now: datetime) -> CallTicket:
    """A ticket as ``Issuer.issue`` makes one for the first demo agent, with a dialled number."""
    iat = to_epoch(now)
    return CallTicket(
        iss="shop.example", jti=new_ticket_id(), iat=iat, exp=iat + 900, agent_id="a-001",
        agent_name="Mei Lin", department="Customer Care", reason="payment_failed",
        cdh=b64url_encode(os.urandom(32)), dst=PHONE[-4:], methods=("code",), kid=key.kid)


def check(condition: bool, what: str) -> None:
    """Refuse to time something that does not work (kept under ``python -O``, unlike assert)."""
    if not condition:
        raise RuntimeError(f"benchmark setup: {what}")


def crypto_benches(now: datetime) -> tuple[list[Bench], dict[str, Any]]:
    """Raw Ed25519, callproof and joserfc, all on one key and one ticket."""
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private)
    public = private.public_key()
    ticket = realistic_ticket(key, now)
    token = encode_ticket(ticket, key)
    signing_input, _, _ = token.rpartition(".")
    message = signing_input.encode("ascii")
    signature = private.sign(message)
    keyset = KeySet([TicketKey.active(key.public_jwk())])
    at = now + timedelta(seconds=30)
    check(verify_ticket(token, keyset, now=at) == ticket, "verify_ticket round trip")
    public.verify(signature, message)

    def raw_sign(n: int) -> None:
        sign = private.sign
        for _ in range(n):
            sign(message)

    def raw_verify(n: int) -> None:
        verify = public.verify
        for _ in range(n):
            verify(signature, message)

    def ticket_encode(n: int) -> None:
        for _ in range(n):
            encode_ticket(ticket, key)

    def ticket_verify(n: int) -> None:
        for _ in range(n):
            verify_ticket(token, keyset, now=at)

    benches = [
        Bench("raw_sign", "raw Ed25519 sign", 2000, raw_sign),
        Bench("raw_verify", "raw Ed25519 verify", 1000, raw_verify),
        Bench("ticket_encode", "callproof encode_ticket", 1500, ticket_encode),
        Bench("ticket_verify", "callproof verify_ticket", 1000, ticket_verify),
    ]
    benches += joserfc_benches(private, key, ticket, keyset, at)
    sizes = {"signing_input_bytes": len(message), "token_bytes": len(token)}
    return benches, sizes


def joserfc_benches(private: Ed25519PrivateKey, key: SigningKey, ticket: CallTicket,
                    keyset: KeySet, at: datetime) -> list[Bench]:
    try:
        from joserfc import jwt
        from joserfc.jwk import OKPKey
    except ImportError:
        print("joserfc is not installed (pip install -e '.[test]'): its rows are skipped")
        return []
    jose_key = OKPKey.import_key({**key.public_jwk(),
                                  "d": b64url_encode(private.private_bytes_raw())})
    header = {"alg": "Ed25519", "kid": key.kid, "typ": TYP}
    claims = ticket.to_claims()
    jose_token = jwt.encode(header, claims, jose_key, algorithms=["Ed25519"])
    check(jwt.decode(jose_token, jose_key, algorithms=["Ed25519"]).claims == claims,
          "joserfc round trip")
    check(verify_ticket(jose_token, keyset, now=at) == ticket, "callproof verifies joserfc")

    def jose_encode(n: int) -> None:
        for _ in range(n):
            jwt.encode(header, claims, jose_key, algorithms=["Ed25519"])

    def jose_verify(n: int) -> None:
        for _ in range(n):
            jwt.decode(jose_token, jose_key, algorithms=["Ed25519"])

    return [
        Bench("joserfc_encode", "joserfc jwt.encode", 1500, jose_encode),
        Bench("joserfc_verify", "joserfc jwt.decode", 1000, jose_verify),
    ]


def issue_bench(stack: ExitStack) -> Bench:
    """``Issuer.issue`` on a fresh data dir that ``stack`` removes again."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callproof-bench-")))
    data_dir = tmp / "data"
    init_data_dir(data_dir)
    issuer = Issuer.open(data_dir)
    stack.callback(issuer.dep.store.close)  # runs before the directory is removed
    call = issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    with issuer.dep.store.read() as conn:
        keyset = issuer.dep.keyset(conn)
    check(verify_ticket(call.ticket, keyset).jti == call.ticket_id, "an issued ticket verifies")

    def issue(n: int) -> None:
        do = issuer.issue
        for _ in range(n):
            do(agent_id="a-001", reason="payment_failed", phone=PHONE)

    return Bench("issue", "callproof Issuer.issue (SQLite)", 200, issue)


def timed(bench: Bench) -> float:
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        bench.run(bench.batch)
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def measure(benches: list[Bench], seconds: float) -> int:
    """Round-robin until ``seconds`` are spent (at least MIN_ROUNDS); returns the rounds run."""
    for bench in benches:  # warm-up: caches, compiled statements, the first WAL pages
        timed(bench)
    start = time.perf_counter()
    rounds = 0
    while rounds < MIN_ROUNDS or time.perf_counter() - start < seconds:
        shift = rounds % len(benches)
        for bench in benches[shift:] + benches[:shift]:
            bench.samples.append(timed(bench))
        rounds += 1
    return rounds


# --- the report -------------------------------------------------------------------------------


def report(benches: list[Bench], rounds: int, mode: str, info: dict[str, Any]) -> str:
    by_key = {b.key: b for b in benches}
    lines = [
        f"callproof ticket benchmark ({mode}): best of {rounds} rounds of fixed batches",
        machine_line(info["machine"]),
        f"ticket: signing input {info['sizes']['signing_input_bytes']} bytes, "
        f"token {info['sizes']['token_bytes']} bytes",
        "",
        f"{'benchmark':<34}{'batch':>7}{'ops/s':>11}{'µs/op':>10}{'median µs/op':>15}",
    ]
    for b in benches:
        lines.append(f"{b.label:<34}{b.batch:>7}{b.ops_per_s:>11,.0f}{b.best_us:>10.1f}"
                     f"{b.median_us:>15.1f}")
    lines += ["", f"{'ratio (of ops/s)':<34}{'value':>7}{'aim':>10}   verdict"]
    for r in RATIOS:
        value = r.value(by_key)
        meets = r.meets(value)
        verdict = "" if meets is None else ("meets aim" if meets else "MISSES aim")
        shown = "n/a" if value is None else f"{value:.3f}"
        lines.append(f"{r.label:<34}{shown:>7}{r.aim_text():>10}   {verdict}".rstrip())
    return "\n".join(lines)


def results_json(benches: list[Bench], rounds: int, mode: str, seconds: float,
                 info: dict[str, Any]) -> dict[str, Any]:
    by_key = {b.key: b for b in benches}
    ratios = {}
    for r in RATIOS:
        value = r.value(by_key)
        ratios[r.key] = {"label": r.label, "value": value, "aim": r.aim,
                         "aim_strict": r.strict, "meets_aim": r.meets(value)}
    return {
        "mode": mode, "budget_seconds": seconds, "rounds": rounds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info["machine"], "ticket": info["sizes"],
        "results": {b.key: {"label": b.label, "batch": b.batch, "ops_per_s": b.ops_per_s,
                            "us_per_op": b.best_us, "median_us_per_op": b.median_us,
                            "batch_seconds": b.samples} for b in benches},
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_SECONDS:g} s of measurement")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help=f"measurement budget (default {FULL_SECONDS:g}, "
                             f"--quick {QUICK_SECONDS:g}); setup adds about a second")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the results, every batch time included, as JSON")
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full",
                        help="SQLite's synchronous for the issue benchmark (default full, as "
                             "deployed, spec/adr/0013; normal leaves out the fsync per commit "
                             "to see the CPU's part; benchmarks/bench_durability.py compares)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (
        QUICK_SECONDS if args.quick else FULL_SECONDS)
    mode = "quick" if args.quick else "full"

    for name in [n for n in os.environ if n.startswith("CALLPROOF_")]:
        del os.environ[name]  # never a configured database, key or data dir
    os.environ["CALLPROOF_SQLITE_SYNCHRONOUS"] = args.synchronous

    started = time.perf_counter()
    now = datetime.now(UTC)
    with ExitStack() as stack:
        benches, sizes = crypto_benches(now)
        benches.append(issue_bench(stack))
        rounds = measure(benches, seconds)
    info = {"machine": machine(), "sizes": sizes}
    print(report(benches, rounds, mode, info))
    print(f"\n(took {time.perf_counter() - started:.1f} s)")
    if args.json is not None:
        data = results_json(benches, rounds, mode, seconds, info)
        args.json.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
