"""Failed-lookup counts: one upsert per count on the lookup, old minutes forgotten by housekeeping.

A wrong code adds to its address's, its network's and the deployment's counts and deletes
nothing; the worker's housekeeping deletes the per-client minutes no window reads any more. The
limits a customer meets are the same as when each lookup cleaned up after itself.
"""

from __future__ import annotations

from sqlalchemy import func, select

from callproof import CheckFailed, new_client_token
from callproof.store import schema
from callproof.worker import Worker, housekeeping_duty

from .conftest import World

WRONG = "000000000"  # a well-formed code that is never live here


def wrong_code(w: World, address: str) -> str:
    try:
        w.flow.lookup(WRONG, new_client_token(), client_address=address)
    except CheckFailed as e:
        return e.outcome
    raise AssertionError("a wrong code was accepted")


def client_rows(w: World) -> int:
    with w.deployment.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.client_failures))
                   .scalar_one())


def test_wrong_codes_count_per_address_network_and_minute(world: World) -> None:
    w = world
    w.clock.set(w.clock.now().replace(second=0))
    for _ in range(3):
        assert wrong_code(w, "198.51.100.7") == "not_found"
    assert wrong_code(w, "198.51.100.8") == "not_found"
    with w.deployment.store.read() as conn:
        counts = sorted(int(n) for (n,) in conn.execute(select(schema.client_failures.c.count)))
        total = conn.execute(select(func.sum(schema.failed_lookups.c.count))).scalar_one()
    # Two addresses (3 and 1) and their one network (4), in one minute; the deployment: 4.
    assert counts == [1, 3, 4]
    assert total == 4


def test_housekeeping_forgets_minutes_no_window_reads_and_the_limits_hold(world: World) -> None:
    w = world
    limits = w.deployment.config.limits
    for _ in range(limits.client_failure_limit):
        assert wrong_code(w, "198.51.100.7") == "not_found"
    assert wrong_code(w, "198.51.100.7") == "too_many_tries"
    old = client_rows(w)
    assert old == 2  # the address and its network, this minute

    # Housekeeping inside the window keeps them: the address is still refused.
    Worker(w.deployment, [housekeeping_duty(w.deployment, 30)]).run_once()
    assert client_rows(w) == old
    assert wrong_code(w, "198.51.100.7") == "too_many_tries"

    # Past the window the address may try again (its old minutes no longer count) …
    w.clock.advance(seconds=limits.client_window_seconds + 61)
    assert wrong_code(w, "198.51.100.9") == "not_found"
    assert wrong_code(w, "198.51.100.7") == "not_found"
    # … and once past every window that reads the table, housekeeping deletes the old minutes
    # and keeps the new ones.
    w.clock.advance(seconds=max(limits.client_window_seconds, limits.sign_in_window_seconds,
                                3600) + 120)
    assert wrong_code(w, "203.0.113.5") == "not_found"
    before = client_rows(w)
    Worker(w.deployment, [housekeeping_duty(w.deployment, 30)]).run_once()
    assert client_rows(w) == 2  # only 203.0.113.5 and its network, this minute
    assert before > 2
