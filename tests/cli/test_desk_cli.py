"""`callproof desk` through click's CliRunner: users, the webhook secret and push, and what the
desk shows — alerts, reports, the police facts (spec/fraud-desk.md §6)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from callproof import CheckFailed, CheckFlow, DeskUsers, Issuer, new_client_token
from callproof.deployment import Deployment
from callproof.scam_reports import Reports
from tests.test_webhook import Receiver, _serve

from ._helpers import Run, callproof_over, ok, refused

PASSWORD = "correct horse battery staple"
PLANTED = "call me back on 0955 519 087, I am customer C-44821"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def run(data: Path, backend: str) -> Run:
    return callproof_over(data, backend, COLUMNS="200")  # rich tables on one line


def _scam(data: Path) -> None:
    """Two customers answer "No"; two reports name the same number, one with personal data
    typed into its free text."""
    dep = Deployment.open(data)
    try:
        issuer, flow = Issuer(dep), CheckFlow(dep)
        for agent in ("a-001", "a-002"):
            made = issuer.issue(agent_id=agent, reason="payment_failed", phone="+886955519087")
            client = new_client_token()
            flow.lookup(made.code, client)
            with pytest.raises(CheckFailed):
                flow.answer_number(made.ticket_id, client, yes=False)
        Reports(dep).file(scripts=["refund"], caller_number="02 2345 6789", text=PLANTED)
        Reports(dep).file(scripts=["refund", "install_app"], caller_number="+886223456789")
    finally:
        dep.store.close()


def test_add_list_disable_enable_and_password(run: Run, data: Path) -> None:
    out = ok(run("desk", "add", "f-01", "--name", "Lin Mei", input=f"{PASSWORD}\n{PASSWORD}\n"))
    assert "added desk user f-01 (Lin Mei)" in out.output
    assert PASSWORD not in out.output
    ok(run("desk", "add", "f-02", "--name", "Wang", "--password-stdin", input=PASSWORD + "\n"))
    listed = json.loads(ok(run("desk", "list", "--json")).output)
    assert listed == [{"user_id": "f-01", "name": "Lin Mei", "enabled": True},
                      {"user_id": "f-02", "name": "Wang", "enabled": True}]
    assert "f-01" in ok(run("desk", "list")).output
    ok(run("desk", "disable", "f-02"))
    ok(run("desk", "password", "f-01", "--password-stdin", input="another long passphrase\n"))
    dep = Deployment.open(data)
    try:
        users = DeskUsers(dep)
        assert users.check("f-02", PASSWORD) is None  # disabled
        assert users.check("f-01", PASSWORD) is None
        assert users.check("f-01", "another long passphrase") is not None
    finally:
        dep.store.close()
    ok(run("desk", "enable", "f-02"))
    assert json.loads(ok(run("desk", "list", "--json")).output)[1]["enabled"] is True


def test_user_errors_are_one_clear_line(run: Run) -> None:
    refused(run("desk", "add", "f-01", "--name", "Lin", "--password-stdin", input="short\n"),
            "12–1024 characters")
    refused(run("desk", "add", "f 01", "--name", "Lin", "--password-stdin",
                input=PASSWORD + "\n"), "letters, digits")
    ok(run("desk", "add", "f-01", "--name", "Lin", "--password-stdin", input=PASSWORD + "\n"))
    refused(run("desk", "add", "f-01", "--name", "Lin", "--password-stdin",
                input=PASSWORD + "\n"), "already exists")
    refused(run("desk", "password", "ghost", "--password-stdin", input=PASSWORD + "\n"),
            "no desk user 'ghost'")
    refused(run("desk", "disable", "ghost"), "no desk user")
    mismatch = run("desk", "add", "f-03", "--name", "X", input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output.lower()


def test_webhook_secret_is_shown_once_and_rotated(run: Run, data: Path) -> None:
    first = ok(run("desk", "webhook-secret"))
    secret = first.stdout.strip()
    assert secret.startswith("whsec_")
    again = ok(run("desk", "webhook-secret"))
    assert "exists already" in again.output and secret not in again.output
    rotated = ok(run("desk", "webhook-secret", "--rotate")).stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    assert (data / "secrets" / "webhook.secret").read_text().strip() == rotated


def test_push_needs_a_url_and_a_secret_then_delivers(run: Run, data: Path) -> None:
    refused(run("desk", "push"), "webhook_url")
    server, receiver = _serve(Receiver(0))
    try:
        with (data / "config.toml").open("a", encoding="utf-8") as f:
            f.write(f'\n[alerts]\nwebhook_url = "{receiver.url}"\n')
        refused(run("desk", "push"), "callproof desk webhook-secret")
        ok(run("desk", "webhook-secret"))
        _scam(data)
        out = ok(run("desk", "push")).output
        assert "webhook 127.0.0.1: delivered 2, failed 0, pending 0, gave up 0" in out
        assert len(receiver.got) == 2
        assert "delivered 0, failed 0, pending 0" in ok(run("desk", "push")).output
        assert len(receiver.got) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_webhook_url_is_refused_clearly(run: Run, data: Path) -> None:
    with (data / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[alerts]\nwebhook_url = "http://fraud.example/hook"\n')
    refused(run("desk", "push"), "must be an https:// URL")


def test_alerts_and_reports(run: Run, data: Path) -> None:
    _scam(data)
    alerts = json.loads(ok(run("desk", "alerts", "--json")).output)
    assert [(a["kind"], a["agent_id"]) for a in alerts] == [("number_denied", "a-002"),
                                                            ("number_denied", "a-001")]
    assert len(json.loads(ok(run("desk", "alerts", "--limit", "1", "--json")).output)) == 1
    assert "number_denied" in ok(run("desk", "alerts")).output
    week = json.loads(ok(run("desk", "reports", "--days", "7", "--json")).output)
    assert week["total"] == 2
    assert week["by_number"][0]["number"] == "+886223456789"
    assert week["by_number"][0]["scripts"] == {"refund": 2, "install_app": 1}
    assert week["by_script"]["refund"] == 2 and week["by_script"]["open_link"] == 0
    table = ok(run("desk", "reports", "--days", "30")).output
    assert "+886223456789" in table and PLANTED not in table and "0955" not in table
    refused(run("desk", "reports", "--days", "5"), "'5' is not one of", code=2)


@pytest.mark.parametrize(("zone", "config"), [
    ("Asia/Taipei", ""),  # the demo company's country, TW
    ("America/New_York", 'time_zone = "America/New_York"\n'),
], ids=["from-the-country", "from-the-config"])
def test_alerts_and_reports_in_words_show_the_companys_time_zone(
        run: Run, data: Path, zone: str, config: str) -> None:
    """Issue 14 item 16 in the shell: the desk's words give times in the company's zone, as
    the web desk does, and name it; --json keeps ISO 8601 in UTC."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    config_file = data / "config.toml"
    config_file.write_text(config_file.read_text("utf-8").replace(
        'hotline = "165"\n', 'hotline = "165"\n' + config), "utf-8")
    _scam(data)
    newest = json.loads(ok(run("desk", "alerts", "--json")).output)[0]
    assert newest["at"].endswith("Z")  # JSON: UTC, as before
    at = datetime.fromisoformat(newest["at"]).astimezone(ZoneInfo(zone))
    table = ok(run("desk", "alerts")).output
    assert f"time ({zone})" in table and "(UTC)" not in table
    assert at.strftime("%Y-%m-%d %H:%M:%S") in table
    first = json.loads(ok(run("desk", "reports", "--days", "7", "--json")).output)["by_number"]
    assert first[0]["first_at"].endswith("Z")
    local = datetime.fromisoformat(first[0]["first_at"]).astimezone(ZoneInfo(zone))
    words = ok(run("desk", "reports", "--days", "7")).output
    assert f"first ({zone})" in words and local.strftime("%Y-%m-%d %H:%M:%S") in words


def test_police_facts_as_csv_and_text_hold_no_free_text(run: Run, data: Path) -> None:
    _scam(data)
    text = ok(run("desk", "police", "--days", "30")).stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["reported_at_utc", "caller_number", "scripts"]
    assert sorted(r[1:] for r in rows[1:]) == [["'+886223456789", "refund"],  # same second
                                               ["'+886223456789", "refund;install_app"]]
    out = data.parent / "police.csv"
    ok(run("desk", "police", "--days", "30", "--out", str(out)))
    assert out.read_text("utf-8") == text
    printable = ok(run("desk", "police", "--days", "7", "--format", "text")).stdout
    assert "Reports filed: 2" in printable and "+886223456789: 2 report(s)" in printable
    assert "number_denied 2" in printable
    for shown in (text, printable):
        assert "0955" not in shown and "C-44821" not in shown and "call me back" not in shown
    refused(run("desk", "police", "--days", "0"), "--days", code=2)
    refused(run("desk", "police", "--days", "7", "--out", str(data.parent / "no" / "x.csv")),
            "cannot write")
