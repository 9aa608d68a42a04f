"""The check flow (spec §6) end to end through the library, on SQLite and PostgreSQL.

Every transition of the state table, and every refused one, as the customer, the agent and the
dialer would meet it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from callproof import CheckFailed, CodeTypo, IssuedTicket, TransitionRefused, new_client_token
from callproof.protocol import events as ev
from callproof.protocol import states
from callproof.store.events import read_events

from .conftest import World

PHONE = "+886912345678"


def issue(w: World, phone: str | None = PHONE, **kw: object) -> IssuedTicket:
    return w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=phone, **kw)  # type: ignore[arg-type]


def event_types(w: World, ticket_id: str) -> list[str]:
    with w.deployment.store.read() as conn:
        return [e.type for e in read_events(conn, w.deployment.issuer_id, ticket_id=ticket_id)]


def failure(fn: object, *args: object, **kw: object) -> str:
    with pytest.raises(CheckFailed) as caught:
        fn(*args, **kw)  # type: ignore[operator]
    return caught.value.outcome


def right_word(w: World, call: IssuedTicket) -> str:
    word = w.issuer.status(call.ticket_id).check_word
    assert word is not None
    return word.id


def wrong_word(w: World, call: IssuedTicket, choices: tuple[object, ...]) -> str:
    right = right_word(w, call)
    return next(c.id for c in choices if c.id != right)  # type: ignore[attr-defined]


def test_the_happy_path(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    assert w.issuer.status(call.ticket_id).state == states.ISSUED
    assert w.issuer.connected(call.ticket_id) == states.CONNECTED
    step = w.flow.lookup(call.code_display, client)
    assert (step.step, step.dst) == ("number", "5678")
    assert step.ticket.agent_name == "Mei Lin" and step.reason is not None
    assert w.issuer.status(call.ticket_id).check_word is None  # not before the number is confirmed
    step = w.flow.answer_number(call.ticket_id, client, yes=True)
    assert step.step == "word" and 4 <= len(step.choices) <= 6
    word = right_word(w, call)
    assert word in {c.id for c in step.choices}
    assert w.flow.choose_word(call.ticket_id, client, word).step == "verified"
    assert w.issuer.status(call.ticket_id).state == states.VERIFIED
    assert w.issuer.close(call.ticket_id) == states.CLOSED
    assert event_types(w, call.ticket_id) == [
        ev.TICKET_ISSUED, ev.TICKET_CONNECTED, ev.TICKET_CLAIMED, ev.NUMBER_CONFIRMED,
        ev.TICKET_VERIFIED, ev.TICKET_CLOSED]


def test_a_ticket_without_a_number_goes_straight_to_the_word(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w, phone=None)
    step = w.flow.lookup(call.code, client)
    assert step.step == "word" and step.dst is None
    assert w.issuer.status(call.ticket_id).check_word is not None
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=True) == "wrong_step"
    assert w.flow.choose_word(call.ticket_id, client, right_word(w, call)).step == "verified"


def test_no_to_the_phone_question_ends_the_ticket_and_alerts(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=False) == "number_denied"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == ["number_denied"]
    # And nothing more can happen to it.
    assert failure(w.flow.lookup, call.code, client) == "failed"
    assert failure(w.flow.choose_word, call.ticket_id, client, "watermelon") == "failed"


def test_a_wrong_word_ends_the_ticket_and_alerts(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    step = w.flow.answer_number(call.ticket_id, client, yes=True)
    wrong = wrong_word(w, call, step.choices)
    assert failure(w.flow.choose_word, call.ticket_id, client, wrong) == "wrong_answer"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED and status.alerts[0]["type"] == "wrong_word"
    assert failure(w.flow.choose_word, call.ticket_id, client, right_word_of(w, call)) == "failed"


def right_word_of(w: World, call: IssuedTicket) -> str:
    from sqlalchemy import select

    from callproof.store import schema

    with w.deployment.store.read() as conn:
        return str(conn.execute(select(schema.tickets.c.word_id).where(
            schema.tickets.c.ticket_id == call.ticket_id)).scalar_one())


def test_a_second_device_fails_the_ticket_and_alerts_the_agent(world: World) -> None:
    w = world
    call = issue(w)
    first, second = new_client_token(), new_client_token()
    w.flow.lookup(call.code, first)
    assert failure(w.flow.lookup, call.code, second) == "claimed_elsewhere"
    status = w.issuer.status(call.ticket_id)
    assert status.state == states.FAILED
    assert [a["type"] for a in status.alerts] == ["claimed_elsewhere"]
    assert ev.CLAIMED_ELSEWHERE in event_types(w, call.ticket_id)
    # The first device cannot go on either.
    assert failure(w.flow.answer_number, call.ticket_id, first, yes=True) == "failed"


def test_a_second_device_after_verification_still_alerts(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w, phone=None)
    w.flow.lookup(call.code, client)
    w.flow.choose_word(call.ticket_id, client, right_word(w, call))
    assert failure(w.flow.lookup, call.code, new_client_token()) == "claimed_elsewhere"
    assert w.issuer.status(call.ticket_id).state == states.FAILED


def test_the_same_device_can_look_the_code_up_again(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    assert w.flow.lookup(call.code, client).step == "number"
    assert w.flow.lookup(call.code, client).step == "number"
    w.flow.answer_number(call.ticket_id, client, yes=True)
    assert w.flow.lookup(call.code, client).step == "word"


def test_steps_from_a_device_that_did_not_claim_change_nothing(world: World) -> None:
    w = world
    call = issue(w)
    w.flow.lookup(call.code, new_client_token())
    stranger = new_client_token()
    assert failure(w.flow.answer_number, call.ticket_id, stranger, yes=False) == "not_claimed"
    assert failure(w.flow.choose_word, call.ticket_id, stranger, "x") == "not_claimed"
    assert w.issuer.status(call.ticket_id).state == states.CLAIMED


def test_steps_out_of_order_are_refused_and_change_nothing(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    assert failure(w.flow.choose_word, call.ticket_id, client, right_word_of(w, call)) \
        == "wrong_step"
    w.flow.answer_number(call.ticket_id, client, yes=True)
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=False) == "wrong_step"
    assert w.issuer.status(call.ticket_id).state == states.NUMBER_CONFIRMED


def test_unknown_codes_are_not_found_and_typos_are_not_lookups(world: World) -> None:
    w = world
    assert failure(w.flow.lookup, "000000000", new_client_token()) == "not_found"
    with pytest.raises(CodeTypo):
        w.flow.lookup("482917366", new_client_token())


def test_the_code_is_accepted_only_within_its_window(world: World) -> None:
    w = world
    call = issue(w)
    w.clock.advance(seconds=600)
    assert failure(w.flow.lookup, call.code, new_client_token()) == "expired"
    assert w.issuer.status(call.ticket_id).state == states.ISSUED  # not claimed, not failed


def test_a_claimed_ticket_goes_on_after_the_code_window_until_it_expires(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    w.clock.advance(seconds=700)
    w.flow.answer_number(call.ticket_id, client, yes=True)
    word = right_word(w, call)
    w.clock.advance(seconds=200)  # 900 s: the ticket's end
    assert failure(w.flow.choose_word, call.ticket_id, client, word) == "expired"
    assert w.issuer.status(call.ticket_id).state == states.EXPIRED


def test_a_closed_call_confirms_nothing(world: World) -> None:
    w = world
    call = issue(w)
    w.issuer.close(call.ticket_id)
    assert failure(w.flow.lookup, call.code, new_client_token()) == "closed"


def test_a_revoked_ticket_confirms_nothing(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    assert w.issuer.revoke_ticket(call.ticket_id) == states.REVOKED
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=True) == "revoked"
    assert failure(w.flow.lookup, call.code, client) == "revoked"


def test_revoking_the_key_stops_its_live_tickets_at_once(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    kid = call.claims.kid
    assert kid is not None
    w.admin.rotate_key()
    w.admin.revoke_key(kid)
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=True) == "revoked"
    fresh = issue(w)
    assert fresh.claims.kid != kid
    assert w.flow.lookup(fresh.code, new_client_token()).step == "number"


def test_rotation_keeps_old_tickets_working(world: World) -> None:
    w, client = world, new_client_token()
    old = issue(w)
    w.admin.rotate_key()
    new = issue(w)
    assert old.claims.kid != new.claims.kid
    assert w.flow.lookup(old.code, client).step == "number"
    assert w.flow.lookup(new.code, new_client_token()).step == "number"


@pytest.mark.parametrize("action,from_state", [
    ("connected", states.CLOSED), ("connected", states.FAILED),
    ("close", states.CLOSED), ("revoke", states.CLOSED), ("revoke", states.FAILED),
    ("revoke", states.REVOKED), ("connected", states.EXPIRED), ("revoke", states.EXPIRED),
])
def test_dialer_reports_that_the_state_does_not_allow_are_refused(
        world: World, action: str, from_state: str) -> None:
    w = world
    call = issue(w)
    if from_state == states.CLOSED:
        w.issuer.close(call.ticket_id)
    elif from_state == states.FAILED:
        client = new_client_token()
        w.flow.lookup(call.code, client)
        failure(w.flow.answer_number, call.ticket_id, client, yes=False)
    elif from_state == states.REVOKED:
        w.issuer.revoke_ticket(call.ticket_id)
    else:
        w.clock.advance(seconds=901)
    before = event_types(w, call.ticket_id)
    method = {"connected": w.issuer.connected, "close": w.issuer.close,
              "revoke": w.issuer.revoke_ticket}[action]
    with pytest.raises(TransitionRefused):
        method(call.ticket_id)
    assert event_types(w, call.ticket_id) == before


def test_hanging_up_after_a_failure_is_recorded_and_the_failure_stays(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    failure(w.flow.answer_number, call.ticket_id, client, yes=False)
    assert w.issuer.close(call.ticket_id) == states.FAILED
    assert event_types(w, call.ticket_id)[-1] == ev.TICKET_CLOSED


def test_connected_is_recorded_once_and_later_in_the_call_too(world: World) -> None:
    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    assert w.issuer.connected(call.ticket_id) == states.CLAIMED
    assert w.issuer.connected(call.ticket_id) == states.CLAIMED
    assert event_types(w, call.ticket_id).count(ev.TICKET_CONNECTED) == 1


def test_failed_lookups_are_limited_per_client(world: World) -> None:
    w = world
    limit = w.deployment.config.limits.client_failure_limit
    for _ in range(limit):
        failure(w.flow.lookup, "000000000", new_client_token(), client_address="198.51.100.7")
    call = issue(w)
    assert failure(w.flow.lookup, call.code, new_client_token(),
                   client_address="198.51.100.7") == "too_many_tries"
    # Another address is not affected, and after the window this one is free again.
    assert w.flow.lookup(call.code, new_client_token(), client_address="198.51.100.8")
    w.clock.advance(seconds=w.deployment.config.limits.client_window_seconds + 61)
    assert failure(w.flow.lookup, "000000000", new_client_token(),
                   client_address="198.51.100.7") == "not_found"


def test_the_global_budget_trips_the_breaker_and_alerts(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    w = world
    budget = w.deployment.config.limits.global_failure_budget
    w.clock.set(w.clock.now().replace(second=0))
    with caplog.at_level(logging.INFO, logger="callproof.security"):
        for i in range(budget + 1):
            failure(w.flow.lookup, "000000000", new_client_token(),
                    client_address=f"10.0.{i}.1")
    # The security log says so once, after the wave's start was committed, with no address.
    said = [r.getMessage() for r in caplog.records if "wave.started" in r.getMessage()]
    assert len(said) == 1 and "10.0." not in said[0]
    call = issue(w)
    assert failure(w.flow.lookup, call.code, new_client_token()) == "rate_limited"
    with w.deployment.store.read() as conn:
        types = [e.type for e in read_events(conn, w.deployment.issuer_id)]
    assert types.count(ev.BUDGET_TRIPPED) == 1
    w.clock.advance(seconds=w.deployment.config.limits.breaker_cooldown_seconds)
    assert w.flow.lookup(call.code, new_client_token()).step == "number"


def test_one_network_cannot_spend_more_than_its_own_budget(world: World) -> None:
    """Hardening item 1: failures count per address AND per network (IPv4 /24, IPv6 /48); a
    network past its limit is refused, every address in it, while other networks check."""
    w = world
    limits = w.deployment.config.limits
    w.clock.set(w.clock.now().replace(second=0))
    for i in range(limits.network_failure_limit):  # many addresses, each far under its own limit
        failure(w.flow.lookup, "000000000", new_client_token(),
                client_address=f"198.51.100.{i % 250 + 1}")
        if i % 200 == 199:
            w.clock.advance(seconds=60)  # stay under the deployment's per-minute budget
    call = issue(w)
    assert failure(w.flow.lookup, call.code, new_client_token(),
                   client_address="198.51.100.253") == "too_many_tries"  # a fresh address there
    assert w.flow.lookup(call.code, new_client_token(),
                         client_address="203.0.113.7").step == "number"  # another network
    # IPv6: a /48 is one network, whatever /64 each guess comes from.
    v6 = [f"2001:db8:7:{i:x}::1" for i in range(limits.network_failure_limit)]
    for i, address in enumerate(v6):
        failure(w.flow.lookup, "000000000", new_client_token(), client_address=address)
        if i % 200 == 199:
            w.clock.advance(seconds=60)
    other = issue(w)
    assert failure(w.flow.lookup, other.code, new_client_token(),
                   client_address="2001:db8:7:ffff::9") == "too_many_tries"
    assert w.flow.lookup(other.code, new_client_token(),
                         client_address="2001:db8:8::9").step == "number"


def test_during_a_wave_clean_networks_still_check(world: World) -> None:
    """Hardening item 1: a flood from a few networks trips the deployment's budget; then clients
    and networks with recent failures are refused (rate_limited), genuine customers elsewhere
    check as usual, one alert says the wave is on, and agents can read until when."""
    w = world
    limits = w.deployment.config.limits
    w.clock.set(w.clock.now().replace(second=0))
    flooders = [f"{net}.{i}" for net in ("192.0.2", "198.51.100", "100.64.0")
                for i in range(1, 40)]  # three networks, each under its own limit
    for i in range(limits.global_failure_budget + 1):
        failure(w.flow.lookup, "000000000", new_client_token(),
                client_address=flooders[i % len(flooders)])
    assert w.flow.wave() is not None
    call = issue(w)
    assert failure(w.flow.lookup, call.code, new_client_token(),
                   client_address="192.0.2.200") == "rate_limited"  # the flooders' network
    assert w.flow.lookup(call.code, new_client_token(),
                         client_address="203.0.113.50").step == "number"  # a clean one
    with w.deployment.store.read() as conn:
        types = [e.type for e in read_events(conn, w.deployment.issuer_id)]
    assert types.count(ev.BUDGET_TRIPPED) == 1
    w.clock.advance(seconds=limits.breaker_cooldown_seconds)
    assert w.flow.wave() is None


def test_failed_lookups_are_logged_per_minute_not_per_miss(world: World) -> None:
    w = world
    w.clock.set(w.clock.now().replace(second=5))
    for _ in range(3):
        failure(w.flow.lookup, "000000000", new_client_token())
    w.clock.advance(seconds=60)
    failure(w.flow.lookup, "000000000", new_client_token())
    w.flow.flush_failed_lookups(now=w.clock.now() + timedelta(minutes=1))
    with w.deployment.store.read() as conn:
        counts = [e.data["count"] for e in read_events(conn, w.deployment.issuer_id)
                  if e.type == ev.LOOKUPS_FAILED]
    assert counts == [3, 1]


def test_issuing_refuses_unknown_and_disabled_agents_and_reasons(world: World) -> None:
    from callproof import InputError, NotFound

    w = world
    with pytest.raises(NotFound):
        w.issuer.issue(agent_id="nobody", reason="payment_failed")
    with pytest.raises(NotFound):
        w.issuer.issue(agent_id="a-001", reason="free_text_reason")
    w.admin.set_agent_enabled("a-002", False)
    with pytest.raises(InputError):
        w.issuer.issue(agent_id="a-002", reason="payment_failed")
    for bad in ({"phone": "0912345678"}, {"phone": "+886"}, {"ttl": 30}, {"ttl": 1801}):
        with pytest.raises(InputError):
            w.issuer.issue(agent_id="a-001", reason="payment_failed", **bad)  # type: ignore[arg-type]


def test_a_database_that_maps_a_code_to_another_ticket_is_caught(world: World) -> None:
    """Regression for the threat 'someone who can write the database' (spec §4, cdh)."""
    from sqlalchemy import update

    from callproof.store import schema

    w = world
    victim, other = issue(w), issue(w, phone="+886900000001")
    with w.deployment.store.write() as conn:
        conn.execute(update(schema.live_codes)
                     .where(schema.live_codes.c.ticket_id == victim.ticket_id)
                     .values(ticket_id=other.ticket_id))
    assert failure(w.flow.lookup, victim.code, new_client_token()) == "tampered"
    assert ev.TAMPERED in event_types(w, other.ticket_id)
    assert w.issuer.status(other.ticket_id).state == states.ISSUED  # nothing was claimed


def test_a_database_that_forges_the_token_is_caught(world: World) -> None:
    from sqlalchemy import update

    from callproof.store import schema

    w = world
    call, other = issue(w), issue(w)
    with w.deployment.store.write() as conn:  # a genuine token of another ticket
        conn.execute(update(schema.tickets).where(schema.tickets.c.ticket_id == call.ticket_id)
                     .values(token=other.ticket))
    assert failure(w.flow.lookup, call.code, new_client_token()) == "tampered"


def test_the_phone_question_follows_the_signed_ticket_not_the_table(world: World) -> None:
    from sqlalchemy import update

    from callproof.store import schema

    w, client = world, new_client_token()
    call = issue(w)
    with w.deployment.store.write() as conn:
        conn.execute(update(schema.tickets).where(schema.tickets.c.ticket_id == call.ticket_id)
                     .values(dst=None))
    assert w.flow.lookup(call.code, client).step == "number"
    assert failure(w.flow.choose_word, call.ticket_id, client, right_word_of(w, call)) \
        == "wrong_step"


def test_the_breaker_trips_again_after_its_cooldown(world: World) -> None:
    w = world
    limits = w.deployment.config.limits
    w.clock.set(w.clock.now().replace(second=0))
    for _ in range(limits.global_failure_budget + 1):
        failure(w.flow.lookup, "000000000", new_client_token())
    w.clock.advance(seconds=limits.breaker_cooldown_seconds)
    for _ in range(limits.global_failure_budget + 1):
        failure(w.flow.lookup, "000000000", new_client_token())
    assert failure(w.flow.lookup, "000000000", new_client_token()) == "rate_limited"
    with w.deployment.store.read() as conn:
        trips = [e for e in read_events(conn, w.deployment.issuer_id)
                 if e.type == ev.BUDGET_TRIPPED]
    assert len(trips) == 2


def test_issuing_never_signs_what_verification_would_refuse(world: World) -> None:
    from callproof import InputError

    with pytest.raises(InputError, match="cannot issue"):
        issue(world, methods=("not a method!",))


def test_a_key_revoked_by_another_process_stops_a_running_server_at_once(world: World) -> None:
    """The CLI (its own state) revokes; the long-lived check flow sees it on its next step."""
    from click.testing import CliRunner

    from callproof._cli import cli

    w, client = world, new_client_token()
    call = issue(w)
    w.flow.lookup(call.code, client)
    runner = CliRunner()
    data = ["--data-dir", str(w.path)]
    assert runner.invoke(cli, [*data, "keys", "rotate"]).exit_code == 0
    assert runner.invoke(cli, [*data, "keys", "revoke", "--", str(call.claims.kid)]).exit_code == 0
    assert failure(w.flow.answer_number, call.ticket_id, client, yes=True) == "revoked"
