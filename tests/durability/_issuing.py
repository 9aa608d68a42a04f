"""The process a power cut hits (run by test_power_cut.py, under the fsync shim): it issues
tickets through the library as a dialer would and integrates and signs checkpoints now and then,
as the worker does. It writes each ticket id to stdout only after ``Issuer.issue`` returned —
after the commit: an *acknowledged* ticket. Bounded: it stops by itself after ``max_tickets``
or ``max_seconds`` (the test kills it well before)."""

from __future__ import annotations

import sys
import time

from callproof import Issuer
from callproof.audit.log import AuditLog


def main(data_dir: str, max_tickets: int, max_seconds: float, checkpoint_every: int) -> None:
    issuer = Issuer.open(data_dir)
    audit_log = AuditLog(issuer.dep)
    deadline = time.monotonic() + max_seconds
    for n in range(1, max_tickets + 1):
        if time.monotonic() > deadline:
            break
        call = issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678",
                            ttl=1800)
        sys.stdout.write(call.ticket_id + "\n")
        sys.stdout.flush()
        if n % checkpoint_every == 0:
            audit_log.checkpoint()  # integrates first, then writes the checkpoint file


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
