"""The worker's housekeeping forgets idempotency keys older than their 24 h (issue 12): a retry
within the day still gets its ticket; a day on, the rows are gone and the key is free again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from callproof.idempotency import IdempotentIssuing
from callproof.store import schema
from callproof.worker import Worker, housekeeping_duty

from .conftest import World

CALL: dict[str, Any] = {"agent_id": "a-001", "reason": "payment_failed", "phone": "+886912345678"}


def _rows(world: World) -> int:
    with world.deployment.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(
            schema.idempotency_keys)).scalar_one())


def test_housekeeping_purges_idempotency_keys_a_day_old(world: World) -> None:
    issuing = IdempotentIssuing(world.issuer)
    first = {k: issuing.issue(k, api_key="k_1", request=CALL, **CALL)[0].ticket_id
             for k in ("key-1", "key-2", "key-3")}
    world.clock.advance(seconds=3600)
    late, _ = issuing.issue("key-4", api_key="k_1", request=CALL, **CALL)
    worker = Worker(world.deployment, [housekeeping_duty(world.deployment, 30)])

    world.clock.advance(seconds=23 * 3600 - 1)  # the first three are a second short of a day
    assert worker.run_once() == {"housekeeping": True}
    assert _rows(world) == 4
    call, replayed = issuing.issue("key-1", api_key="k_1", request=CALL, **CALL)
    assert replayed and call.ticket_id == first["key-1"]

    world.clock.advance(seconds=2)
    assert worker.run_once() == {"housekeeping": True}
    assert _rows(world) == 1  # key-4's day is not over
    call, replayed = issuing.issue("key-4", api_key="k_1", request=CALL, **CALL)
    assert replayed and call.ticket_id == late.ticket_id
    call, replayed = issuing.issue("key-1", api_key="k_1", request=CALL, **CALL)
    assert not replayed and call.ticket_id != first["key-1"]  # a new day, a new ticket

    world.clock.advance(seconds=3600)
    assert worker.run_once() == {"housekeeping": True}
    assert _rows(world) == 1  # only the key used again today
