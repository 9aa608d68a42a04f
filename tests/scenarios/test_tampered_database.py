"""Scenario 10 — a tampered database maps a live code to another ticket.

A scammer has write access to the company's database (a leaked backup password, a careless
contractor) but not the hash key or the signing key. He gets the company to call his "mule"
phone, so he knows that call's code. At the same time the company is genuinely calling his
victim. With plain SQL on the SQLite file he repoints the mule code's row in ``live_codes`` to
the victim's ticket: if that worked, the victim typing the code the scammer reads out would be
asked about *her own* last four digits and could be walked to "This is Example Shop."

The mechanism: every ticket carries ``cdh``, a keyed hash binding the ticket to its own call code
(the hash key is not in the database). The check page verifies the stored ticket and its ``cdh``
against the code actually typed: a code repointed to another ticket, a ticket copied into
another row or an edited token all fail; the customer gets the one failure page, the lookup is
refused, and an ``alert.tampered`` event reaches the ticket's agent and the fraud desk. The phone
question reads the signed ``dst`` claim, never the table, so editing the ``dst`` column changes
nothing the customer sees.

The tests tamper the served instance's SQLite file with :mod:`sqlite3`, as the attacker would,
while it runs.

Residual risk: a writer with the database *and* the hash key can insert codes for tickets he can
sign only with the signing key too; without either he can still reset ticket states, pick check
words or clear limits without an event (A8) — treat database write access as issuing access.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from click.testing import CliRunner

from callproof._cli import cli
from callproof.fraud import FraudDesk

from .conftest import Instance

VICTIM_PHONE = "+886912340427"  # her last four: 0427
MULE_PHONE = "+886987650001"


@contextmanager
def _attacker_sql(instance: Instance) -> Iterator[sqlite3.Connection]:
    """Plain SQL on the data dir's SQLite file, outside the software, committed at the end."""
    with closing(sqlite3.connect(instance.path / "callproof.db", timeout=10)) as db:
        with db:
            yield db


def _official(instance: Instance) -> str:
    return str(instance.services().deployment.config.company.official_number)


def test_a_code_repointed_to_another_ticket_is_refused_and_raises_the_alarm(
        instance: Instance) -> None:
    dialer, console = instance.dialer(), instance.console()
    mule_call = dialer.issue(phone=MULE_PHONE)  # the scammer's own phone: he hears this code
    victim_ticket, _victims_code = console.start_call(phone=VICTIM_PHONE)

    with _attacker_sql(instance) as db:
        moved = db.execute("UPDATE live_codes SET ticket_id = ? WHERE ticket_id = ?",
                           (victim_ticket, mule_call["ticket_id"])).rowcount
    assert moved == 1

    victim = instance.customer()
    page = victim.type_code(mule_call["code_display"])  # what the scammer reads out to her
    assert page.kind == "failed", "the victim is never asked about her own number"
    words = page.visible_text()
    assert "We cannot confirm this call." in words and _official(instance) in words
    assert "0427" not in words

    # The alarm: on the record, on the genuine agent's screen, and on the fraud desk.
    [alarm] = [e for e in instance.events() if e.type == "alert.tampered"]
    assert alarm.data == {"ticket_id": victim_ticket, "check": "cdh_mismatch"}
    alerts = console.status(victim_ticket)["alerts"]
    assert [a["type"] for a in alerts] == ["alert.tampered"]
    assert alerts[0]["text"] == "The stored call record does not match. Tell the fraud desk."
    desk = FraudDesk(instance.services().deployment).alerts()
    assert [(a.kind, a.ticket_id, a.agent_id, dict(a.details)) for a in desk] == [
        ("tampered", victim_ticket, "a-001", {"check": "cdh_mismatch"})]
    # The refusal claimed nothing: the genuine call is still open for the real check.
    assert "ticket.claimed" not in instance.event_types(ticket_id=victim_ticket)
    # The operator's read-only look at the code says the same.
    looked = CliRunner().invoke(cli, ["--data-dir", str(instance.path), "check-code",
                                      mule_call["code_display"], "--json"])
    assert looked.exit_code == 0 and '"outcome": "tampered"' in looked.stdout


def test_a_ticket_copied_into_another_row_or_edited_is_refused_with_an_alarm(
        instance: Instance) -> None:
    dialer = instance.dialer()
    mule_call = dialer.issue(phone=MULE_PHONE)
    victim_call = dialer.issue(phone=VICTIM_PHONE)
    third = dialer.issue(phone=MULE_PHONE)

    with _attacker_sql(instance) as db:
        # The victim's signed ticket copied over the mule ticket's row, code link untouched.
        db.execute("UPDATE tickets SET token = (SELECT token FROM tickets WHERE ticket_id = ?), "
                   "dst = '0427' WHERE ticket_id = ?",
                   (victim_call["ticket_id"], mule_call["ticket_id"]))
        # Another ticket's signed payload edited to the victim's last four digits.
        token = db.execute("SELECT token FROM tickets WHERE ticket_id = ?",
                           (third["ticket_id"],)).fetchone()[0]
        head, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["dst"] = "0427"
        forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":"))
                                          .encode()).rstrip(b"=").decode()
        db.execute("UPDATE tickets SET token = ? WHERE ticket_id = ?",
                   (f"{head}.{forged}.{signature}", third["ticket_id"]))

    for call in (mule_call, third):
        page = instance.customer().type_code(call["code_display"])
        assert page.kind == "failed" and _official(instance) in page.visible_text()
    checks = {e.data["ticket_id"]: e.data["check"] for e in instance.events()
              if e.type == "alert.tampered"}
    assert checks == {mule_call["ticket_id"]: "cdh_mismatch",
                      third["ticket_id"]: "bad_signature"}
    kinds = [a.kind for a in FraudDesk(instance.services().deployment).alerts()]
    assert kinds == ["tampered", "tampered"]
    # The untouched victim call still confirms for the real victim.
    victim = instance.customer()
    assert victim.type_code(victim_call["code_display"]).kind == "number"
    assert victim.answer_number(yes=True).kind == "word"
    assert victim.tap_word(dialer.check_word(victim_call["ticket_id"])).kind == "confirmed"


def test_the_phone_question_follows_the_signed_number_not_the_table(instance: Instance) -> None:
    dialer = instance.dialer()
    mule_call = dialer.issue(phone=MULE_PHONE)
    with _attacker_sql(instance) as db:
        db.execute("UPDATE tickets SET dst = '0427' WHERE ticket_id = ?",
                   (mule_call["ticket_id"],))
    victim = instance.customer()
    page = victim.type_code(mule_call["code_display"])
    assert page.kind == "number"
    assert "0001" in page.visible_text() and "0427" not in page.visible_text()
    # The victim, whose phone ends in 0427, answers truthfully: "No" ends the mule's ticket.
    assert victim.answer_number(yes=False).kind == "failed"
    assert dialer.status(mule_call["ticket_id"])["state"] == "failed"
    assert "number_denied" in [a.kind for a in FraudDesk(instance.services().deployment).alerts()]


def test_an_edited_record_is_flagged_in_the_auditors_report(instance: Instance,
                                                            tmp_path: Path) -> None:
    dialer = instance.dialer()
    mule_call, victim_call = dialer.issue(phone=MULE_PHONE), dialer.issue(phone=VICTIM_PHONE)
    with _attacker_sql(instance) as db:
        db.execute("UPDATE live_codes SET ticket_id = ? WHERE ticket_id = ?",
                   (victim_call["ticket_id"], mule_call["ticket_id"]))
    assert instance.customer().type_code(mule_call["code_display"]).kind == "failed"
    runner = CliRunner()
    data = ["--data-dir", str(instance.path)]
    assert runner.invoke(cli, [*data, "audit", "export", "--out", str(tmp_path / "b")]
                         ).exit_code == 0
    vkey = runner.invoke(cli, [*data, "audit", "vkey"]).stdout.strip()
    out = tmp_path / "report.html"
    made = runner.invoke(cli, ["audit", "report", str(tmp_path / "b"), "--out", str(out),
                               "--log-key", vkey])
    assert made.exit_code == 0 and "the bundle verifies" in made.stdout, made.output
    words = html.unescape(re.sub(r"<[^>]+>", " ", out.read_text("utf-8")))
    assert "A stored call did not match its code" in words
    assert f"call {victim_call['ticket_id']} failed the server's own check (cdh_mismatch)" \
        in words
