"""SQLite durability: ``synchronous=FULL`` against ``NORMAL`` (ADR 0013).

    python benchmarks/bench_durability.py              # about 40 s
    python benchmarks/bench_durability.py --quick      # a smoke run, well under 15 s
    python benchmarks/bench_durability.py --json out.json

For each setting of ``CALLPROOF_SQLITE_SYNCHRONOUS``, on a fresh SQLite data dir in a temporary
directory (on the disk of the temporary directory: put TMPDIR on the deployment's disk to measure
it):

* ``issue``: :meth:`callproof.Issuer.issue` end to end, one after another (tickets per second:
  each is one write transaction, so with FULL one fsync of the WAL each);
* ``checkpoint``: integrating 100 tickets' events and signing a checkpoint — the database made
  durable (:meth:`Store.make_durable`), then the checkpoint file written and fsync'd (ms each).

The settings alternate in rounds so a slow spell of a shared machine hits both; each figure is
the median over the rounds. The benchmark reports; it never fails on a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODES = ("full", "normal")


def _fresh(mode: str, directory: Path) -> object:
    os.environ["CALLPROOF_SQLITE_SYNCHRONOUS"] = mode
    from callproof import Issuer, init_data_dir

    init_data_dir(directory)
    return Issuer.open(directory)


def _round(mode: str, directory: Path, tickets: int) -> tuple[float, float]:
    """Tickets per second issuing ``tickets``, and ms per checkpoint of 100 new tickets."""
    from callproof import Issuer
    from callproof.audit.log import AuditLog

    issuer = _fresh(mode, directory)
    assert isinstance(issuer, Issuer)
    audit_log = AuditLog(issuer.dep)
    try:
        audit_log.checkpoint()
        began = time.perf_counter()
        for _ in range(tickets):
            issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678")
        rate = tickets / (time.perf_counter() - began)
        checkpoints = []
        for _ in range(3):
            for _ in range(100):
                issuer.issue(agent_id="a-001", reason="payment_failed")
            audit_log.integrate()
            began = time.perf_counter()
            audit_log.checkpoint()
            checkpoints.append((time.perf_counter() - began) * 1000)
        return rate, statistics.median(checkpoints)
    finally:
        issuer.dep.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("CALLPROOF_")]:
        del os.environ[name]
    rounds, tickets = (2, 100) if args.quick else (4, 400)
    results: dict[str, dict[str, list[float]]] = {m: {"issue": [], "checkpoint": []}
                                                  for m in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        for r in range(rounds):
            for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
                rate, ms = _round(mode, Path(tmp) / f"{mode}-{r}", tickets)
                results[mode]["issue"].append(rate)
                results[mode]["checkpoint"].append(ms)
    summary = {m: {"issue_per_s": statistics.median(v["issue"]),
                   "checkpoint_ms": statistics.median(v["checkpoint"])}
               for m, v in results.items()}
    full, normal = summary["full"], summary["normal"]
    print(f"SQLite synchronous, {rounds} rounds of {tickets} tickets ({platform.node()}, "
          f"{sys.platform}; TMPDIR {tempfile.gettempdir()})")
    for mode in MODES:
        s = summary[mode]
        print(f"  {mode:<6}  issue {s['issue_per_s']:8.0f} tickets/s   "
              f"checkpoint + file {s['checkpoint_ms']:7.1f} ms")
    print(f"  FULL issues {100 * (1 - full['issue_per_s'] / normal['issue_per_s']):.0f} % "
          "slower than NORMAL")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "tickets": tickets,
                                         "summary": summary, "raw": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
