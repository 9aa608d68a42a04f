"""Scenario 11 — a rogue insider at night.

Agent a-003 sells customers' secrets to a scam ring. At 02:00 Taipei time, alone on the night
shift, he uses the call-centre software's key (it may issue, read and reveal) to issue call
tickets naming himself for enrolled customers, and asks for their app codes and call phrases —
with no call placed at all: with a customer's phrase, the ring's "agent" sounds exactly like the
company. Refused, he uses his shell on the server to force one reveal through.

The mechanism: a reveal needs a call the dialer reported connected, else it is refused (409,
``not_connected``) and ``alert.reveal_unconnected`` goes to the fraud desk at once, naming the
ticket's agent and the API key; a forced reveal (the operator's ``--allow-unconnected``) is
still an alert and is logged as a reveal with no call behind it. Reveals are capped per agent
and per customer an hour. The auditor's report (``callproof audit report`` on an exported
bundle) flags the calls outside working hours, the reveals asked for or made with no connected
call, and the agent whose volume is far above his peers' (more than 3 × the median of the
others, which needs at least two peers who issued calls).

What the test shows: a normal day (two honest agents, one honest reveal on a connected call,
nothing flagged against them), then the night; the refusals and alerts as the insider and the
fraud desk see them; the report's findings, in English and Traditional Chinese.

Residual risk: an insider who also holds the dialer's ``issue`` scope can report his own fake
calls "connected" and reveal up to the caps (20 an hour per agent, 3 per customer) without a
refusal; those show in the report only as after-hours and volume anomalies, after the fact.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from callproof import Deployment, EnrolledProofs
from callproof._cli import cli
from callproof.fraud import FraudDesk

from .conftest import Dialer, Instance

#: 02:00 in Taipei (UTC+8) on the night after the office day of the harness.
NIGHT = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
ROGUE = "a-003"
NIGHT_CALLS = 8


def _enrol(instance: Instance, refs: list[str]) -> None:
    """Customers who enrolled a call phrase earlier (on the enrolment page, weeks ago)."""
    enrolled = instance.services().enrolled
    for n, ref in enumerate(refs):
        enrolled.set_phrase(f"blue kettle on stair {n}", customer_ref=ref)


def _reveal(dialer: Dialer, ticket_id: str) -> tuple[int, dict[str, object]]:
    response = dialer.call("POST", f"/tickets/{ticket_id}/reveal")
    return response.status_code, response.json()


def _a_normal_day(instance: Instance, crm: Dialer) -> None:
    """Two honest agents, two calls each, one reveal during a connected call."""
    for agent in ("a-001", "a-001", "a-002", "a-002"):
        crm.issue(agent=agent)
        instance.clock.advance(seconds=600)
    honest = crm.issue(agent="a-001", customer_ref="C-100")
    crm.connected(honest["ticket_id"])
    status, shown = _reveal(crm, honest["ticket_id"])
    assert status == 200 and shown["phrase"] == "blue kettle on stair 0"


def _the_night(instance: Instance, crm: Dialer) -> list[str]:
    instance.clock.set(NIGHT)
    tickets = []
    for n in range(NIGHT_CALLS):
        call = crm.issue(agent=ROGUE, customer_ref=f"C-2{n:02d}", phone=None)
        tickets.append(str(call["ticket_id"]))
        status, body = _reveal(crm, call["ticket_id"])
        assert status == 409 and body["error"] == "not_connected", body
        assert "phrase" not in body and "app_code" not in body
        instance.clock.advance(seconds=60)
    return tickets


def test_reveals_without_a_call_at_night_are_refused_and_alert_the_fraud_desk_at_once(
        instance: Instance) -> None:
    _enrol(instance, ["C-100", *(f"C-2{n:02d}" for n in range(NIGHT_CALLS))])
    crm = instance.dialer(scopes=("issue", "status", "reveal"), name="crm")
    _a_normal_day(instance, crm)
    desk = FraudDesk(instance.services().deployment)
    assert desk.alerts() == [], "an honest day raises nothing"

    tickets = _the_night(instance, crm)
    alerts = desk.alerts()
    assert [a.kind for a in alerts] == ["reveal_unconnected"] * NIGHT_CALLS
    assert {a.ticket_id for a in alerts} == set(tickets)
    assert {a.agent_id for a in alerts} == {ROGUE}
    key_ids = {e.data["key_id"] for e in instance.events() if e.type == "apikey.created"}
    assert {a.details["api_key"] for a in alerts} <= key_ids
    assert all(a.details["allowed"] is False for a in alerts)
    # Nothing was revealed: no reveal event carries a code or a phrase for the night's tickets.
    revealed = [e for e in instance.events() if e.type.startswith("reveal.")]
    assert all(e.data["ticket_id"] not in tickets for e in revealed)


def test_the_auditors_report_flags_the_night_calls_the_reveals_and_the_agent_far_above_peers(
        instance: Instance, tmp_path: Path) -> None:
    _enrol(instance, ["C-100", *(f"C-2{n:02d}" for n in range(NIGHT_CALLS))])
    crm = instance.dialer(scopes=("issue", "status", "reveal"), name="crm")
    _a_normal_day(instance, crm)
    tickets = _the_night(instance, crm)

    # The insider's shell on the server: the operator's forced reveal (what `callproof reveal
    # --allow-unconnected` runs), at the instance's hour. He gets the phrase; it is an alert.
    server_shell = EnrolledProofs(Deployment.open(instance.path, clock=instance.clock))
    try:
        forced = server_shell.reveal(tickets[0], allow_unconnected=True)
    finally:
        server_shell.dep.store.close()
    assert forced.phrase == "blue kettle on stair 1"
    newest = FraudDesk(instance.services().deployment).alerts(limit=1)[0]
    assert (newest.kind, newest.ticket_id, newest.agent_id) == \
        ("reveal_unconnected", tickets[0], ROGUE)
    assert newest.details["allowed"] is True, "the forced reveal is an alert too"

    runner = CliRunner()
    data = ["--data-dir", str(instance.path)]
    exported = runner.invoke(cli, [*data, "audit", "export", "--out", str(tmp_path / "b")])
    assert exported.exit_code == 0, exported.output
    vkey = runner.invoke(cli, [*data, "audit", "vkey"]).stdout.strip()
    words = {}
    for lang in ("en", "zh-Hant"):
        out = tmp_path / f"report.{lang}.html"
        made = runner.invoke(cli, ["audit", "report", str(tmp_path / "b"), "--out", str(out),
                                   "--log-key", vkey, "--lang", lang])
        assert made.exit_code == 0 and "the bundle verifies" in made.stdout, made.output
        words[lang] = re.sub(r"\s+", " ", html.unescape(
            re.sub(r"<[^>]+>", " ", out.read_text("utf-8"))))

    en = words["en"]
    assert "Calls outside working hours" in en
    assert f"{NIGHT_CALLS} calls were issued outside 08:00–20:00 (Asia/Taipei). By agent: " \
           f"{ROGUE} ({NIGHT_CALLS})." in en
    assert f"Agent {ROGUE} issued far more calls than colleagues" in en
    # The peers issued 3 (a-001, with the honest reveal's call) and 2 (a-002): median 2.5.
    assert f"Agent {ROGUE} issued {NIGHT_CALLS} calls, 3.2 times the median of the other " \
           f"agents (2.5). {NIGHT_CALLS} of them were outside working hours." in en
    assert "Reveals asked for with no call connected" in en
    assert f"{NIGHT_CALLS} times an agent asked for a customer's app code or call phrase while " \
           f"no call was connected; each was refused. By agent: {ROGUE} ({NIGHT_CALLS})." in en
    assert "Reveals with no call behind them" in en
    assert "1 app code or call phrase was revealed for a call the dialer never reported as " \
           f"connected (on 2026-11-25 02:08). By agent: {ROGUE} (1)." in en
    for honest in ("a-001", "a-002"):
        assert f"Agent {honest} issued far more" not in en
        assert f"{honest} (" not in en.split("Calls outside working hours")[1].split(".")[0]
    zh = words["zh-Hant"]
    assert "上班時間以外的電話" in zh and f"客服人員 {ROGUE} 共發出 {NIGHT_CALLS} 通" in zh
