"""Issue 14 item 21: every command that prints data takes --json (one JSON document on stdout,
the same facts as the words, nothing secret the words do not show), and bad input exits
non-zero with one line on stderr."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
from click.testing import CliRunner, Result

from callproof._cli import cli
from tests.proofs.otp_by_hand import key_of
from tests.proofs.otp_by_hand import totp as totp_by_hand

from ._helpers import Run, callproof_over, ok, refused

REF = "C-json-1"

# Commands that print no data, so take no --json. Each says why.
_NO_DATA = {
    "serve": "runs the web server until stopped",
    "init": "creates the data dir; `keys list`, `agents list`, `reasons list` show what it made",
    "witness serve": "runs the witness server until stopped",
    "voice sip": "answers SIP calls until stopped",
    "notice": "prints the notice card itself (PNG, SVG or HTML), or writes it to --out",
    "audit new-log-key": "an interactive, once-in-a-lifetime recovery that asks to confirm",
    "desk add": "asks for a password twice and says 'added'; `desk list --json` shows the user",
    "desk password": "asks for a password twice and says 'password set'",
}
# Commands that print data but take no --json yet: none. (Add one here only with the reason and
# the issue that will give it --json.)
_NOT_YET: dict[str, str] = {}


def _leaves(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()
            ) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += _leaves(command, ctx, (*path, name))
        else:
            found.append((" ".join((*path, name)), command))
    return found


def _has_json(command: click.Command) -> bool:
    return any("--json" in getattr(p, "opts", ()) for p in command.params)


def test_every_command_that_prints_data_has_json() -> None:
    """Walks the whole command table (every group, every subcommand): a command without --json
    must be on one of the two commented lists above, and one on them must still exist."""
    with click.Context(cli) as ctx:
        leaves = dict(_leaves(cli, ctx))
    assert len(leaves) > 50  # the walk reached into the groups
    missing = sorted(name for name, command in leaves.items()
                     if not _has_json(command) and name not in _NO_DATA | _NOT_YET)
    assert missing == [], f"these print data but take no --json: {missing}"
    assert set(_NO_DATA) | set(_NOT_YET) <= set(leaves), "a listed command is gone: unlist it"
    for name in ("call-status", "coverage", "enroll confirm", "enroll phrase", "enroll remove",
                 "reveal", "agents add", "agents set", "agents list", "agents disable",
                 "agents enable", "agents set-password", "witness init", "voice route",
                 "voice routes", "voice prompts", "desk disable", "desk enable",
                 "desk webhook-secret", "audit report", "demo", "audit prove",
                 "audit consistency"):
        assert _has_json(leaves[name]), name


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return callproof_over(tmp_path / "data", "")


def _js(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def test_enroll_commands_print_json_and_never_the_secret(run: Run) -> None:
    started = _js(run("enroll", "totp", "--customer", REF, "--json"))
    assert isinstance(started, dict)
    code = totp_by_hand(key_of(parse_qs(urlsplit(started["otpauth_uri"]).query)["secret"][0]),
                        int(time.time()))
    assert _js(run("enroll", "confirm", "--customer", REF, code, "--json")) == {
        "enrolled": "app", "confirmed": True}
    set_phrase = run("enroll", "phrase", "--customer", REF, "--json", input="blue heron at dawn\n")
    assert _js(set_phrase) == {"enrolled": "phrase"}
    assert "heron" not in set_phrase.output
    assert _js(run("enroll", "remove", "--customer", REF, "--phrase", "--json")) == {
        "removed": ["phrase"]}
    # Nothing left of that kind: JSON still, an empty list, exit 1 and one line on stderr.
    again = run("enroll", "remove", "--customer", REF, "--phrase", "--json")
    assert again.exit_code == 1 and json.loads(again.stdout) == {"removed": []}
    assert again.stderr.strip() == "nothing enrolled to remove"
    # Bad input: a wrong code exits 1 with one line on stderr, and prints no JSON.
    bad = run("enroll", "confirm", "--customer", "C-none", "123456", "--json")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith("callproof: ")


def test_call_status_and_coverage(run: Run) -> None:
    ok(run("enroll", "phrase", "--customer", REF, input="blue heron at dawn\n"))
    call = _js(run("issue", "--agent-id", "a-001", "--reason", "payment_failed",
                   "--customer", REF, "--json"))
    assert isinstance(call, dict)
    status = _js(run("call-status", "--customer", REF, "--json"))
    assert status == _js(run("call-status", "--customer", REF))  # JSON either way
    assert status["calling"] is True and status["agent_name"] == "Mei Lin"
    refused(run("call-status", "--customer", " ", "--json"), "customer ref")

    cover = _js(run("coverage", "--json"))
    assert isinstance(cover, dict)
    care = next(r for r in cover["departments"] if r["department"] == "Customer Care")
    assert care["tickets"] == 1 and care["agents_issuing"] == 1
    # The words say the same: the department and its count, and which teams were silent.
    words = ok(run("coverage")).output
    assert "Customer Care" in words and f"tickets on {cover['day']}" in words
    assert "silent (no tickets): " in words
    assert _js(run("coverage", "--day", "2001-01-01", "--json"))["departments"][0][
        "tickets"] == 0
    assert run("coverage", "--day", "yesterday").exit_code == 2  # usage: not a date


def test_agents_and_voice_commands_print_json(run: Run) -> None:
    added = _js(run("agents", "add", "a-900", "Lin Jie", "--department", "Billing",
                    "--transfer-to", "sip:lin@pbx.shop.example", "--json"))
    assert isinstance(added, dict)
    assert added["id"] == "a-900" and added["name"] == "Lin Jie"
    assert _js(run("agents", "disable", "a-900", "--json")) == {"agent_id": "a-900",
                                                               "enabled": False}
    rows = {r["id"]: r for r in _js(run("agents", "list", "--json"))}
    assert rows["a-900"]["enabled"] is False
    assert _js(run("agents", "enable", "a-900", "--json")) == {"agent_id": "a-900",
                                                              "enabled": True}
    changed = _js(run("agents", "set", "a-900", "--name", "Lin J.", "--json"))
    assert changed["name"] == "Lin J."
    pw = run("agents", "set-password", "a-900", "--password-stdin", "--json",
             input="correct horse battery staple\n")
    assert _js(pw) == {"agent_id": "a-900", "password_set": True}
    assert "horse" not in pw.output
    routes = {r["id"]: r for r in _js(run("voice", "routes", "--json"))}
    assert routes["a-900"]["transfer_target"] == "sip:lin@pbx.shop.example"
    route = _js(run("voice", "route", "a-900", "--queue", "+886223456789", "--json"))
    assert route["queue"] == "+886223456789"
    # Bad input: one line on stderr, exit 1, nothing on stdout.
    for args in (("agents", "disable", "a-nobody"), ("voice", "route", "a-900",
                                                     "--transfer-to", "not a target")):
        bad = run(*args, "--json")
        assert bad.exit_code == 1 and bad.stdout == "", bad.output
        assert len(bad.stderr.strip().splitlines()) == 1


def test_desk_enable_disable_print_json(run: Run) -> None:
    ok(run("desk", "add", "d-1", "--name", "Desk One", "--password-stdin",
           input="correct horse battery staple\n"))
    assert _js(run("desk", "disable", "d-1", "--json")) == {"user_id": "d-1", "enabled": False}
    assert _js(run("desk", "list", "--json")) == [{"user_id": "d-1", "name": "Desk One",
                                                   "enabled": False}]


def test_witness_init_prints_json(tmp_path: Path, run: Run) -> None:
    log_vkey = ok(run("audit", "vkey")).output.strip()
    made = CliRunner().invoke(cli, ["witness", "init", "auditor.example/w2", "--state-dir",
                                    str(tmp_path / "w"), "--log", log_vkey, "--json"])
    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    assert data["name"] == "auditor.example/w2" and data["vkey"].startswith("auditor.example/w2+")
    assert data["logs"] == ["shop.example/callproof-log"]
    again = CliRunner().invoke(cli, ["witness", "init", "auditor.example/w2", "--state-dir",
                                     str(tmp_path / "w"), "--json"])
    assert again.exit_code != 0 and again.stdout == ""
    assert again.stderr.startswith("callproof: ")


def test_witness_init_with_a_bad_log_key_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "w"
    bad = CliRunner().invoke(cli, ["witness", "init", "auditor.example/w3", "--state-dir",
                                   str(state), "--log", "not-a-key", "--json"])
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.strip() == ("callproof: the log key is refused: verifier key must be "
                                  "name+keyid+key")
    assert not state.exists()  # no half-made witness that a second init would refuse
    made = CliRunner().invoke(cli, ["witness", "init", "auditor.example/w3", "--state-dir",
                                    str(state), "--json"])
    assert made.exit_code == 0 and json.loads(made.stdout)["logs"] == []


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="voice prompts need Debian's espeak-ng (installed by .ci/run)")
def test_voice_prompts_prints_json(run: Run, tmp_path: Path) -> None:
    made = _js(run("voice", "prompts", "--cache", str(tmp_path / "cache"), "--json"))
    assert made["cache_dir"] == str(tmp_path / "cache")
    assert made["languages"] == ["en", "zh-Hant", "zh-Hans"]
    assert made["prompts"] == len(list((tmp_path / "cache").rglob("*.wav"))) > 0
    words = ok(run("voice", "prompts", "--cache", str(tmp_path / "cache"))).output
    assert words.strip() == f"{made['prompts']} prompts ready in {tmp_path / 'cache'}"


def test_webhook_secret_and_audit_report_print_json(run: Run, tmp_path: Path) -> None:
    made = _js(run("desk", "webhook-secret", "--json"))
    assert isinstance(made["secret"], str) and len(made["secret"]) > 20
    assert made["webhook_url_set"] is False
    # Shown once only: the next call says there is one, and shows nothing.
    assert _js(run("desk", "webhook-secret", "--json"))["secret"] is None
    rotated = _js(run("desk", "webhook-secret", "--rotate", "--json"))["secret"]
    assert rotated not in (None, made["secret"])

    ok(run("issue", "--agent-id", "a-001", "--reason", "payment_failed"))
    vkey = ok(run("audit", "vkey")).output.strip()
    exported = _js(run("audit", "export", "--out", str(tmp_path / "b"), "--json"))
    out = tmp_path / "report.html"
    summary = _js(run("audit", "report", str(tmp_path / "b"), "--out", str(out),
                      "--log-key", vkey, "--no-progress", "--json"))
    assert summary == {"out": str(out), "lang": "en", "ok": True, "pinned": True,
                       "failures": 0, "entries": exported["entries"]}
    assert out.stat().st_size > 0
    # The bundle's own key (--trust-bundle-key): the facts say it was not pinned.
    unpinned = run("audit", "report", str(tmp_path / "b"), "--out", str(out),
                   "--trust-bundle-key", "--no-progress", "--json")
    assert unpinned.exit_code == 0 and json.loads(unpinned.stdout)["pinned"] is False


def test_demo_prints_json_with_what_its_words_show(tmp_path: Path) -> None:
    """The demo's code, ticket, password and addresses as one JSON document; the words say
    the same. A second run keeps the password: null in JSON, "kept" in words."""
    env = {"CALLPROOF_DATA_DIR": str(tmp_path / "demo")}
    first = CliRunner().invoke(cli, ["demo", "--no-serve", "--port", "8124", "--json"], env=env)
    made = _js(first)
    tid = made["ticket_id"]
    assert made["code_display"].replace(" ", "") == made["code"]
    assert (made["agent_id"], made["agent_name"], made["reason"]) == (
        "a-001", "Mei Lin", "order_delivery")
    assert isinstance(made["password"], str) and len(made["password"]) >= 16
    assert (made["check_page"], made["console"], made["call_page"]) == (
        "http://127.0.0.1:8124/", "http://127.0.0.1:8124/console/",
        f"http://127.0.0.1:8124/console/tickets/{tid}")
    assert made["status_command"].endswith(f"tickets status {tid}")
    assert made["check_code_command"].endswith(f"check-code '{made['code_display']}'")
    assert "ticket" not in made  # the signed token is the dialer's; the words never show it
    # The password works, and a second run keeps it: null, and the words say "kept".
    again = _js(CliRunner().invoke(cli, ["demo", "--no-serve", "--json"], env=env))
    assert again["password"] is None and again["ticket_id"] != tid
    words = ok(CliRunner().invoke(cli, ["demo", "--no-serve", "--port", "8124"], env=env)).stdout
    assert "kept, not reset" in words and made["password"] not in words
    assert "http://127.0.0.1:8124/console/tickets/t_" in words


def test_audit_prove_and_consistency_print_words_or_json(run: Run, tmp_path: Path) -> None:
    call = _js(run("issue", "--agent-id", "a-001", "--reason", "payment_failed", "--json"))
    tid = call["ticket_id"]
    proof_file = tmp_path / "p.tlog-proof"
    proved = _js(run("audit", "prove", tid, "--out", str(proof_file), "--json"))
    assert proved["proof"] == proof_file.read_text("utf-8")
    assert proved["ticket_id"] == tid and proved["out"] == str(proof_file)
    assert proved["origin"].endswith("/callproof-log") and proved["index"] < proved["size"]
    # Without --out the words are the proof itself; with --json the proof is in "proof".
    assert ok(run("audit", "prove", tid)).stdout == proved["proof"]
    assert _js(run("audit", "prove", tid, "--json"))["out"] is None

    ok(run("issue", "--agent-id", "a-002", "--reason", "payment_failed"))
    facts = _js(run("audit", "consistency", "1", "--json"))
    assert facts["old_size"] == 1 and facts["new_size"] > 1 and facts["proof"]
    words = ok(run("audit", "consistency", "1")).stdout.splitlines()
    n = len(facts["proof"])
    assert words == [f"old size 1, root {facts['old_root']}",
                     f"new size {facts['new_size']}, root {facts['new_root']}",
                     f"proof: {n} hash{'' if n == 1 else 'es'}",
                     *(f"  {h}" for h in facts["proof"])]
    refused(run("audit", "consistency", "999999", "--json"), "the old size must be")
