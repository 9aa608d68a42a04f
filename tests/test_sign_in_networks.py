"""Known networks: whoever knows an agent's id cannot lock the agent out of where they work.

Ten failed sign-ins for one account, from anywhere, refuse the account for the window (the cap
against guessing one password from many networks) — except from a network the account signed in
from in ``sign_in_known_network_days``, where only the address limits hold. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from callproof.seclog import client_field
from callproof.sign_ins import SignIns, TooManySignIns
from callproof.store import schema

from .conftest import World

ATTACKER = "198.51.100.7"  # network A
ELSEWHERE = "203.0.113.5"  # network B, where a-001 never signed in
DAY = 86400


def sign_in(w: World, address: str, user_id: str = "a-001") -> str:
    """A sign-in with the right password, as the console makes it."""
    sign_ins = SignIns(w.deployment)
    return sign_ins.start("agent", user_id, attempt=sign_ins.attempt("agent", user_id, address))


def fail(w: World, address: str, times: int, user_id: str = "a-001") -> None:
    """``times`` sign-ins with a wrong password, as the console makes them."""
    sign_ins = SignIns(w.deployment)
    for _ in range(times):
        sign_ins.attempt("agent", user_id, address)
        sign_ins.failed("agent", user_id)


def known_networks(w: World) -> int:
    with w.deployment.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(
            schema.sign_in_networks)).scalar_one())


def limited_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.callproof_fields for r in caplog.records  # type: ignore[attr-defined]
            if getattr(r, "callproof_fields", {}).get("event") == "sign_in.account_limited"]


@pytest.mark.parametrize(("office", "office_later"), [
    ("192.0.2.10", "192.0.2.77"),  # another address in the IPv4 /24
    ("2001:db8:1:2::5", "2001:db8:1:ff::9"),  # another /64 in the IPv6 /48
    ("kiosk-7", "kiosk-7"),  # a client key that is no address: known as itself
], ids=["ipv4-24", "ipv6-48", "not-an-address"])
def test_an_attacker_who_knows_the_id_cannot_lock_the_agent_out_of_their_office(
        world: World, office: str, office_later: str) -> None:
    sign_in(world, office)
    world.clock.advance(seconds=DAY)
    fail(world, ATTACKER, 10)
    sign_ins = SignIns(world.deployment)
    with pytest.raises(TooManySignIns):
        sign_ins.attempt("agent", "a-001", ATTACKER)
    with pytest.raises(TooManySignIns):  # refused before its right password is even checked
        sign_ins.attempt("agent", "a-001", ELSEWHERE)
    token = sign_in(world, office_later)
    assert sign_ins.check("agent", token) is not None
    with pytest.raises(TooManySignIns):  # the agent's sign-in opened nothing for the others
        sign_ins.attempt("agent", "a-001", ELSEWHERE)


def test_the_office_stays_bound_by_the_address_limits(world: World) -> None:
    sign_in(world, "192.0.2.10")
    fail(world, "192.0.2.66", 10)  # a guesser inside the office fills its own address's count
    with pytest.raises(TooManySignIns):
        SignIns(world.deployment).attempt("agent", "a-001", "192.0.2.66")
    sign_in(world, "192.0.2.10")  # the agent's desk is another address


def test_failures_from_the_office_still_count_against_the_account(world: World) -> None:
    sign_in(world, "192.0.2.10")
    fail(world, ATTACKER, 9)
    fail(world, "192.0.2.10", 1)  # the tenth failure, from the known network
    with pytest.raises(TooManySignIns):
        SignIns(world.deployment).attempt("agent", "a-001", ELSEWHERE)
    world.clock.advance(seconds=5 * 60)
    fail(world, "192.0.2.11", 10)  # past the limit: let through, and still counted
    world.clock.advance(seconds=11 * 60)  # the first ten have left the window; these have not
    with pytest.raises(TooManySignIns):
        SignIns(world.deployment).attempt("agent", "a-001", ELSEWHERE)


@pytest.mark.parametrize(("days_since", "spared"), [(29, True), (31, False)],
                         ids=["within-30-days", "older-than-30-days"])
def test_a_network_is_known_for_the_configured_days(world: World, days_since: int,
                                                    spared: bool) -> None:
    assert world.deployment.config.limits.sign_in_known_network_days == 30  # documented default
    sign_in(world, "192.0.2.10")
    world.clock.advance(seconds=days_since * DAY)
    fail(world, ATTACKER, 10)
    if spared:
        sign_in(world, "192.0.2.10")
    else:
        with pytest.raises(TooManySignIns):
            SignIns(world.deployment).attempt("agent", "a-001", "192.0.2.10")


def test_housekeeping_forgets_networks_older_than_the_setting(world: World) -> None:
    sign_in(world, "192.0.2.10")
    world.clock.advance(seconds=20 * DAY)
    sign_in(world, "203.0.113.80")
    sign_in(world, "192.0.2.10", user_id="a-002")
    assert known_networks(world) == 3
    world.clock.advance(seconds=11 * DAY)
    SignIns(world.deployment).purge()
    assert known_networks(world) == 2  # a-001's 192.0.2.0/24, 31 days old, is forgotten


def test_a_network_is_known_for_one_account_only(world: World) -> None:
    sign_in(world, "192.0.2.10", user_id="a-002")
    fail(world, ATTACKER, 10)
    with pytest.raises(TooManySignIns):
        SignIns(world.deployment).attempt("agent", "a-001", "192.0.2.10")


def test_the_security_log_says_once_per_trip_that_an_account_is_limited(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    sign_ins = SignIns(world.deployment)
    sign_in(world, "192.0.2.10")
    with caplog.at_level(logging.INFO, logger="callproof.security"):
        fail(world, ATTACKER, 10)
        assert limited_lines(caplog) == []  # reaching ten is not yet a refusal
        for address in (ATTACKER, ELSEWHERE, ELSEWHERE):
            with pytest.raises(TooManySignIns):
                sign_ins.attempt("agent", "a-001", address)
        sign_in(world, "192.0.2.10")
        assert limited_lines(caplog) == [
            {"event": "sign_in.account_limited", "kind": "agent", "user_id": "a-001",
             "client": client_field(world.deployment.hash_keys, ATTACKER)}]
        world.clock.advance(seconds=16 * 60)  # the window has passed: a new trip, a new line
        fail(world, ATTACKER, 10)
        with pytest.raises(TooManySignIns):
            sign_ins.attempt("agent", "a-001", ELSEWHERE)
        assert len(limited_lines(caplog)) == 2
    assert all(ATTACKER not in r.getMessage() and ELSEWHERE not in r.getMessage()
               for r in caplog.records)


def test_the_log_never_names_an_id_that_is_no_account(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    typed = "my password typed in the id box"
    with caplog.at_level(logging.INFO, logger="callproof.security"):
        for n in range(10):
            fail(world, f"198.51.100.{n + 1}", 1, user_id=typed)
        with pytest.raises(TooManySignIns):
            SignIns(world.deployment).attempt("agent", typed, ATTACKER)
    assert [line.get("unknown_id") for line in limited_lines(caplog)] == [True]
    assert all(typed not in r.getMessage() for r in caplog.records)


def test_the_migration_makes_the_tables_the_code_uses(world: World) -> None:
    """Every table and column of the schema, as the migrations made them (0015: the known
    networks, with the index housekeeping deletes by)."""
    with world.deployment.store.read() as conn:
        found = inspect(conn)
        for table in schema.metadata.sorted_tables:
            assert {c["name"] for c in found.get_columns(table.name)} == \
                set(table.columns.keys()), table.name
        indexes = {i["name"] for i in found.get_indexes("sign_in_networks")}
    assert "ix_sign_in_networks_last_at" in indexes
