"""Issue 14 items 20–21: the reason catalogue from the shell, bad input exits non-zero, and
every command that prints data has --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._helpers import Run, callproof_over, ok, refused


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return callproof_over(tmp_path / "data", "")


@pytest.fixture
def run_any(tmp_path: Path, backend: str) -> Run:
    return callproof_over(tmp_path / "data", backend)


def _events(run: Run, out: Path) -> list[dict[str, object]]:
    ok(run("audit", "export", "--out", str(out)))
    return [json.loads(line) for line in (out / "entries.jsonl").read_text().splitlines()]


def test_reasons_add_and_disable_without_python(run_any: Run, tmp_path: Path) -> None:
    added = ok(run_any("reasons", "add", "warranty_renewal", "About your warranty renewal",
                       "--zh-Hant", "關於您的保固續約", "--zh-Hans", "关于您的保修续约"))
    assert "added reason warranty_renewal" in added.output
    rows = {r["code"]: r for r in json.loads(ok(run_any("reasons", "list", "--json")).stdout)}
    assert rows["warranty_renewal"]["text"] == {
        "en": "About your warranty renewal", "zh-Hant": "關於您的保固續約",
        "zh-Hans": "关于您的保修续约"}
    assert rows["warranty_renewal"]["enabled"] is True
    # A call can be made with it …
    ok(run_any("issue", "--agent-id", "a-001", "--reason", "warranty_renewal"))
    # … until it is disabled: then issuing with it is refused, and the list says so.
    assert "disabled reason warranty_renewal: new calls cannot use it" in ok(
        run_any("reasons", "disable", "warranty_renewal")).output
    refused(run_any("issue", "--agent-id", "a-001", "--reason", "warranty_renewal"), "reason")
    rows = {r["code"]: r for r in json.loads(ok(run_any("reasons", "list", "--json")).stdout)}
    assert rows["warranty_renewal"]["enabled"] is False
    ok(run_any("reasons", "enable", "warranty_renewal"))
    ok(run_any("issue", "--agent-id", "a-001", "--reason", "warranty_renewal"))
    types = [e["type"] for e in _events(run_any, tmp_path / "bundle")]
    assert types.count("reason.added") >= 1
    assert "reason.disabled" in types and "reason.enabled" in types
    # The exported log with the new event types still verifies offline.
    vkey = ok(run_any("audit", "vkey")).output.strip()
    ok(run_any("audit", "verify", str(tmp_path / "bundle"), "--log-key", vkey))


def test_reasons_add_without_chinese_warns_and_bad_input_is_refused(run: Run) -> None:
    added = run("reasons", "add", "survey", "A short survey about your order")
    assert added.exit_code == 0
    assert "no zh-Hant text" in added.stderr and "no zh-Hans text" in added.stderr
    refused(run("reasons", "add", "survey", "again"), "already exists")
    refused(run("reasons", "add", "bad code!", "text"), "reason code")
    refused(run("reasons", "disable", "no_such_reason"), "no reason 'no_such_reason'")
    assert run("reasons", "add", "only_code").exit_code == 2  # usage: TEXT is missing


@pytest.mark.parametrize("code", ["123", "abc", "12345678901", ""])
def test_check_code_exits_non_zero_on_what_is_not_a_code(run: Run, code: str) -> None:
    result = run("check-code", code)
    assert result.exit_code == 1, result.output
    assert "not a call code" in result.stderr
    as_json = run("check-code", code, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == {"outcome": "malformed"}


def test_check_code_of_a_real_code_exits_zero(run: Run) -> None:
    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--json")).stdout)
    assert ok(run("check-code", call["code_display"])).output.startswith("valid — Mei Lin")
    assert json.loads(ok(run("check-code", "000000000", "--json")).stdout)["outcome"] \
        == "not_found"


def test_tickets_status_reads_as_words_and_as_json(run: Run) -> None:
    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--json")).stdout)
    text = ok(run("tickets", "status", call["ticket_id"])).output
    assert f"call {call['ticket_id']}: issued" in text and "check word: not yet" in text
    data = json.loads(ok(run("tickets", "status", call["ticket_id"], "--json")).stdout)
    assert data["state"] == "issued" and data["ticket_id"] == call["ticket_id"]
    refused(run("tickets", "status", "t_nope"), "t_nope")


@pytest.mark.parametrize(("page", "asked", "named"), [
    ("en", "en", "English"), ("zh-Hant", "en", "繁體中文"), ("zh-Hans", "zh-Hant", "简体中文"),
], ids=["en", "zh-Hant", "zh-Hans"])
def test_tickets_status_shows_the_check_word_as_the_customer_sees_it(
        run: Run, tmp_path: Path, page: str, asked: str, named: str) -> None:
    """Issue 14 item 11 in the shell: once the customer has typed the code on a page in
    ``page``, the word is shown as they see it, with the agent's ``--lang`` beside it when
    it reads differently there."""
    from callproof import WORDS, CheckFlow, new_client_token
    from callproof.deployment import Deployment

    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--phone", "+886912345678", "--json")).stdout)
    dep = Deployment.open(tmp_path / "data")
    try:
        client = new_client_token()
        CheckFlow(dep).lookup(call["code"], client, lang=page)
        CheckFlow(dep).answer_number(call["ticket_id"], client, yes=True)
    finally:
        dep.store.close()
    data = json.loads(ok(run("tickets", "status", call["ticket_id"], "--lang", asked,
                             "--json")).stdout)
    word = WORDS[data["check_word"]["id"]]
    assert data["check_word"] == {"id": word.id, "emoji": word.emoji, "text": word.text(asked),
                                  "customer_lang": page, "customer_text": word.text(page)}
    text = ok(run("tickets", "status", call["ticket_id"], "--lang", asked)).stdout
    beside = f"; {word.text(asked)}" if word.text(asked) != word.text(page) else ""
    assert (f"check word: {word.emoji} {word.text(page)}  (the customer's page is in "
            f"{named}{beside})\n") in text


def test_every_data_command_has_json(run: Run, tmp_path: Path) -> None:
    """Each command below printed words only; with --json its stdout is one JSON document."""
    call = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                             "--customer", "C-9", "--json")).stdout)
    tid = call["ticket_id"]
    key = json.loads(ok(run("api-keys", "create", "dialer", "--scope", "issue",
                            "--json")).stdout)
    bundle = tmp_path / "b"

    def js(*args: str) -> object:
        result = ok(run(*args, "--json"))
        return json.loads(result.stdout)

    assert js("tickets", "connected", tid) == {"ticket_id": tid, "state": "connected"}
    assert js("tickets", "status", tid)["state"] == "connected"  # type: ignore[index]
    assert js("tickets", "close", tid) == {"ticket_id": tid, "state": "closed"}
    call2 = json.loads(ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                              "--json")).stdout)
    assert js("tickets", "revoke", call2["ticket_id"])["state"] == "revoked"  # type: ignore[index]
    assert js("verify", call["ticket"])["jti"] == tid  # type: ignore[index]
    assert js("customers", "forget", "C-9") == {"forgotten": True}
    assert js("api-keys", "revoke", key["key_id"]) == {"key_id": key["key_id"],
                                                       "revoked": True}
    rotated = js("keys", "rotate")
    assert rotated["status"] == "active"  # type: ignore[index]
    assert any(k["kid"] == rotated["kid"]  # type: ignore[index]
               for k in js("keys", "jwks")["keys"])  # type: ignore[index]
    assert js("reasons", "add", "j_reason", "Text", "--zh-Hant", "文", "--zh-Hans", "文"
              )["code"] == "j_reason"  # type: ignore[index]
    assert js("reasons", "disable", "j_reason") == {"code": "j_reason", "enabled": False}
    cp = js("audit", "checkpoint")
    assert cp["size"] > 0 and "root" in cp  # type: ignore[index,operator]
    vkey = js("audit", "vkey")["vkey"]  # type: ignore[index]
    assert js("audit", "export", "--out", str(bundle))["entries"] > 0  # type: ignore[index,operator]
    report = js("audit", "verify", str(bundle), "--log-key", vkey)
    assert report["ok"] is True and report["pinned"] is True  # type: ignore[index]
    proof = tmp_path / "p.tlog-proof"
    ok(run("audit", "prove", tid, "--out", str(proof)))
    checked = js("audit", "verify-proof", str(proof), "--log-key", vkey)
    assert checked["ok"] is True and checked["ticket_id"] == tid  # type: ignore[index]
    police = js("desk", "police", "--days", "7")
    assert police["days"] == 7 and police["reports"] == []  # type: ignore[index]
    assert js("audit", "vkey")["origin"].endswith("/callproof-log")  # type: ignore[index]
    # A failed verify still prints JSON, and exits 1.
    (bundle / "entries.jsonl").write_text("{}\n")
    broken = run("audit", "verify", str(bundle), "--log-key", vkey, "--json")
    assert broken.exit_code == 1 and json.loads(broken.stdout)["ok"] is False


def test_demo_leads_to_the_check_word_and_keeps_its_password(tmp_path: Path) -> None:
    """Item 19: the demo says where the agent sees the check word; a second run keeps the
    password it printed the first time, and says so."""
    import re

    from click.testing import CliRunner

    from callproof._cli import cli
    from callproof.agent_auth import AgentPasswords
    from callproof.deployment import Deployment

    env = {"CALLPROOF_DATA_DIR": str(tmp_path / "demo")}
    first = CliRunner().invoke(cli, ["demo", "--no-serve", "--port", "8123"], env=env)
    assert first.exit_code == 0, first.output
    password = re.search(r"agent id a-001, password (\S+)\)", first.output)
    assert password
    ticket = re.search(r"\(ticket (t_\S+), valid until", first.output)
    assert ticket
    assert f"http://127.0.0.1:8123/console/tickets/{ticket.group(1)}" in first.output
    assert f"tickets status {ticket.group(1)}" in first.output
    second = CliRunner().invoke(cli, ["demo", "--no-serve"], env=env)
    assert second.exit_code == 0, second.output
    assert "kept, not reset" in second.output and password.group(1) not in second.output
    dep = Deployment.open(tmp_path / "demo")
    try:
        assert AgentPasswords(dep).check("a-001", password.group(1))  # still the first one
    finally:
        dep.store.close()
    third = CliRunner().invoke(cli, ["demo", "--no-serve", "--new-password"], env=env)
    fresh = re.search(r"agent id a-001, password (\S+)\)", third.output)
    assert third.exit_code == 0 and fresh and fresh.group(1) != password.group(1)
    # The command the demo prints shows the call's state and, later, its check word.
    status = CliRunner().invoke(cli, ["tickets", "status", ticket.group(1)], env=env)
    assert status.exit_code == 0 and "check word: not yet" in status.output


def test_demo_on_a_busy_port_names_it_and_changes_nothing(tmp_path: Path) -> None:
    import socket

    from click.testing import CliRunner

    from callproof._cli import cli

    env = {"CALLPROOF_DATA_DIR": str(tmp_path / "demo")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["demo", "--port", str(port)], env=env)
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "callproof demo --port " in result.output and "Nothing changed." in result.output
    assert not (tmp_path / "demo").exists()  # refused before the data dir was made


def test_witness_commands_print_json(tmp_path: Path, run: Run) -> None:
    from click.testing import CliRunner

    from callproof._cli import cli

    state = str(tmp_path / "w")
    made = CliRunner().invoke(cli, ["witness", "init", "auditor.example/w1", "--state-dir",
                                    state])
    assert made.exit_code == 0, made.output
    shown = CliRunner().invoke(cli, ["witness", "vkey", "--state-dir", state, "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["name"] == "auditor.example/w1" and data["vkey"].startswith("auditor.example/w1+")
    log_vkey = ok(run("audit", "vkey")).output.strip()
    added = CliRunner().invoke(cli, ["witness", "add-log", log_vkey, "--state-dir", state,
                                     "--json"])
    assert added.exit_code == 0 and json.loads(added.stdout) == {
        "origin": "shop.example/callproof-log"}
