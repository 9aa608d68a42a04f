"""Random sequences of check-flow steps against a small model of spec §6 (hypothesis).

Whatever the customer, a second device, the dialer and the clock do, in whatever order, the
library does what the model says — and in particular never reaches ``verified`` any other way
than: one device claims, answers "yes", taps the right word, in time, with no second device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from callproof import (
    CheckFailed,
    FixedClock,
    TransitionRefused,
    init_data_dir,
    new_client_token,
)
from callproof.checkflow import CheckFlow
from callproof.deployment import Deployment
from callproof.issuer import Issuer
from callproof.store import schema
from callproof.store.events import read_events

from .conftest import T0

CODE_WINDOW, LIFETIME = 600, 900
LIVE = {"issued", "connected", "claimed", "number_confirmed", "verified"}


@dataclass
class Model:
    state: str = "issued"
    claimed_by: int | None = None
    t: int = 0
    connected: bool = False
    verified_ever: bool = False

    def eff(self) -> str:
        return "expired" if self.state in LIVE and self.t >= LIFETIME else self.state

    def lookup(self, c: int) -> str:
        eff = self.eff()
        if eff not in LIVE:
            return eff
        if self.claimed_by == c:
            return "ok"
        if self.claimed_by is not None:
            self.state = "failed"
            return "claimed_elsewhere"
        if self.t >= CODE_WINDOW:
            return "expired"
        self.state, self.claimed_by = "claimed", c
        return "ok"

    def number(self, c: int, yes: bool) -> str:
        if self.claimed_by != c:
            return "not_claimed"
        if self.eff() not in LIVE:
            return self.eff()
        if self.state != "claimed":
            return "wrong_step"
        if not yes:
            self.state = "failed"
            return "number_denied"
        self.state = "number_confirmed"
        return "ok"

    def word(self, c: int, right: bool) -> str:
        if self.claimed_by != c:
            return "not_claimed"
        if self.eff() not in LIVE:
            return self.eff()
        if self.state != "number_confirmed":
            return "wrong_step"
        if not right:
            self.state = "failed"
            return "wrong_answer"
        self.state, self.verified_ever = "verified", True
        return "ok"

    def dialer(self, action: str) -> str:
        eff = self.eff()
        if action == "connected":
            if eff not in LIVE:
                return "refused"
            if not self.connected:
                self.connected = True
                if self.state == "issued":
                    self.state = "connected"
            return "ok"
        if action == "close":
            if eff in ("failed", "revoked"):
                return "ok"
            if eff == "closed":
                return "refused"
            self.state = "closed"
            return "ok"
        if eff not in LIVE:
            return "refused"
        self.state = "revoked"
        return "ok"


_step = st.one_of(
    st.tuples(st.just("lookup"), st.integers(0, 1)),
    st.tuples(st.just("number"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("word"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("dialer"), st.sampled_from(["connected", "close", "revoke"])),
    st.tuples(st.just("wait"), st.sampled_from([30, 250, 400])),
)


@dataclass
class Shared:
    clock: FixedClock
    issuer: Issuer
    flow: CheckFlow
    deployment: Deployment


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    path = tmp_path_factory.mktemp("flowprops") / "data"
    clock = FixedClock(T0)
    init_data_dir(path, now=clock.now())
    dep = Deployment.open(path, clock=clock)
    yield Shared(clock, Issuer(dep), CheckFlow(dep), dep)
    dep.store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, max_size=10))
def test_any_sequence_of_steps_follows_the_model(shared: Shared,
                                                 steps: list[tuple[Any, ...]]) -> None:
    s = shared
    s.clock.advance(seconds=3600)  # every example starts on a fresh ticket, in a fresh hour
    call = s.issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678")
    clients = [new_client_token(), new_client_token()]
    with s.deployment.store.read() as conn:
        word = conn.execute(select(schema.tickets.c.word_id).where(
            schema.tickets.c.ticket_id == call.ticket_id)).scalar_one()
    model = Model()
    for step in steps:
        kind = step[0]
        if kind == "wait":
            s.clock.advance(seconds=step[1])
            model.t += step[1]
            continue
        try:
            if kind == "lookup":
                expected = model.lookup(step[1])
                s.flow.lookup(call.code, clients[step[1]])
            elif kind == "number":
                expected = model.number(step[1], step[2])
                s.flow.answer_number(call.ticket_id, clients[step[1]], yes=step[2])
            elif kind == "word":
                expected = model.word(step[1], step[2])
                s.flow.choose_word(call.ticket_id, clients[step[1]],
                                   word if step[2] else "not-" + word)
            else:
                expected = model.dialer(step[1])
                getattr(s.issuer, {"connected": "connected", "close": "close",
                                   "revoke": "revoke_ticket"}[step[1]])(call.ticket_id)
            got = "ok"
        except CheckFailed as e:
            got = e.outcome
        except TransitionRefused:
            got = "refused"
        assert got == expected, (steps, step, model)
        assert s.issuer.status(call.ticket_id).state == model.eff(), (steps, step)
    # The log agrees: "verified" is logged exactly when the model reached it.
    with s.deployment.store.read() as conn:
        logged = [e.type for e in read_events(conn, s.deployment.issuer_id,
                                               ticket_id=call.ticket_id)]
    assert ("ticket.verified" in logged) == model.verified_ever
    assert logged[0] == "ticket.issued"
