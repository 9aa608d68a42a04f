"""The story a bundle tells (spec/audit-log.md §6 step 4b), the parallel signature check, the
block-wise Merkle recomputation, and the witness quorum on ``verify-proof`` and ``report``.

Each tampered bundle here is one a dishonest log could produce: canonical lines, correctly
hashed into a checkpoint re-signed with the real log key — only the story is impossible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof import new_client_token
from callproof._cli import cli
from callproof.audit.log import AuditLog
from callproof.auditor import bundle as B
from callproof.auditor import scan
from callproof.auditor.bundle import verify_bundle
from callproof.protocol.events import Event
from callproof.store import schema
from callproof.tlog import merkle, note
from tests.conftest import World

PHONE = "+886912345678"


@dataclass
class Calls:
    path: Path
    vkey: str
    log: AuditLog
    happy: str  # with a number: connected, claimed, number confirmed, verified, closed
    wrong_word: str  # without a number: claimed, a wrong word, failed, closed
    denied: str  # with a number: claimed, "No", failed
    relayed: str  # claimed by two devices: failed (claimed_elsewhere)
    waiting: str  # issued only


def _word(w: World, ticket_id: str) -> str:
    from sqlalchemy import select

    with w.deployment.store.read() as conn:
        return str(conn.execute(select(schema.tickets.c.word_id).where(
            schema.tickets.c.ticket_id == ticket_id)).scalar_one())


def _fails(fn: object, *args: object, **kw: object) -> None:
    try:
        fn(*args, **kw)  # type: ignore[operator]
    except Exception:  # noqa: BLE001, S110 - the refusal is the point
        pass


@pytest.fixture
def calls(world: World, tmp_path: Path) -> Calls:
    w = world
    happy = w.issuer.issue(agent_id="a-002", reason="order_delivery", phone=PHONE)
    w.issuer.connected(happy.ticket_id)
    client = new_client_token()
    w.flow.lookup(happy.code, client)
    w.flow.answer_number(happy.ticket_id, client, yes=True)
    w.flow.choose_word(happy.ticket_id, client, _word(w, happy.ticket_id))
    w.issuer.close(happy.ticket_id)
    w.clock.advance(seconds=7)
    wrong = w.issuer.issue(agent_id="a-002", reason="order_delivery")
    client = new_client_token()
    step = w.flow.lookup(wrong.code, client)
    other = next(c.id for c in step.choices if c.id != _word(w, wrong.ticket_id))
    _fails(w.flow.choose_word, wrong.ticket_id, client, other)
    w.issuer.close(wrong.ticket_id)
    w.clock.advance(seconds=7)
    denied = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    client = new_client_token()
    w.flow.lookup(denied.code, client)
    _fails(w.flow.answer_number, denied.ticket_id, client, yes=False)
    w.clock.advance(seconds=7)
    relayed = w.issuer.issue(agent_id="a-001", reason="payment_failed")
    w.flow.lookup(relayed.code, new_client_token())
    _fails(w.flow.lookup, relayed.code, new_client_token())
    w.clock.advance(seconds=7)
    waiting = w.issuer.issue(agent_id="a-001", reason="payment_failed")
    log = AuditLog(w.deployment)
    log.export(tmp_path / "bundle")
    return Calls(tmp_path / "bundle", log.vkey(), log, happy.ticket_id, wrong.ticket_id,
                 denied.ticket_id, relayed.ticket_id, waiting.ticket_id)


def _lines(path: Path) -> list[bytes]:
    return (path / "entries.jsonl").read_bytes().splitlines(keepends=True)


def _find(lines: list[bytes], type_: str, ticket_id: str) -> int:
    """The 0-based index of the ticket's event of this type."""
    return next(i for i, raw in enumerate(lines)
                if (e := json.loads(raw))["type"] == type_ and
                e["data"].get("ticket_id") == ticket_id)


def _event(lines: list[bytes], i: int, type_: str, **change: object) -> bytes:
    """Line ``i`` made into another event of its ticket (canonical bytes and a newline)."""
    e = json.loads(lines[i])
    data = {"ticket_id": e["data"]["ticket_id"]}
    at = change.pop("at", e["at"])
    data.update(change)
    return Event(type=type_, issuer=e["iss"], at=int(at), data=data).to_bytes() + b"\n"  # type: ignore[call-overload]


def _resign(c: Calls, lines: list[bytes]) -> None:
    """Write the lines and a checkpoint of exactly them, signed with the real log key."""
    (c.path / "entries.jsonl").write_bytes(b"".join(lines))
    signer = c.log.signer()
    root = merkle.root_hash([merkle.leaf_hash(raw[:-1]) for raw in lines])
    text = note.Checkpoint(signer.name, len(lines), root).to_text()
    (c.path / "checkpoint").write_text(note.sign_note(text, [signer]), "utf-8")


def _messages(c: Calls, **kw: object) -> list[str]:
    report = verify_bundle(c.path, log_key=c.vkey, **kw)  # type: ignore[arg-type]
    return [str(f) for f in report.failures]


def test_every_real_flow_is_a_possible_story(calls: Calls) -> None:
    report = verify_bundle(calls.path, log_key=calls.vkey)
    assert report.ok, report.failures
    assert report.tickets == 5 and report.workers == 1  # a small bundle: no pool
    assert set(report.timings) == {"merkle", "lines", "signatures", "signatures_cpu", "total"}


def test_verified_without_the_number_confirmed(calls: Calls) -> None:
    lines = _lines(calls.path)
    del lines[_find(lines, "ticket.number_confirmed", calls.happy)]
    _resign(calls, lines)
    claimed = _find(lines, "ticket.claimed", calls.happy) + 1
    verified = _find(lines, "ticket.verified", calls.happy) + 1
    assert _messages(calls) == [
        f"line {verified}: ticket.verified of ticket {calls.happy} is impossible: the ticket is "
        f"claimed since line {claimed}; the ticket has a number (dst): "
        "ticket.number_confirmed must come before the check word"]


def test_verified_without_a_claim(calls: Calls) -> None:
    lines = _lines(calls.path)
    issued = _find(lines, "ticket.issued", calls.waiting)
    lines.append(_event(lines, issued, "ticket.verified"))
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {len(lines)}: ticket.verified of ticket {calls.waiting} is impossible: the ticket "
        f"is issued since line {issued + 1}; the check word comes after ticket.claimed and, for "
        "a ticket with a number (dst), after ticket.number_confirmed"]


def test_a_second_claim(calls: Calls) -> None:
    lines = _lines(calls.path)
    i = _find(lines, "ticket.claimed", calls.happy)
    lines.insert(i + 1, lines[i])
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {i + 2}: ticket.claimed of ticket {calls.happy} is impossible: the ticket is "
        f"claimed since line {i + 1}; a ticket is claimed once, by one device, while it is "
        "issued or connected"]


def test_connected_twice(calls: Calls) -> None:
    lines = _lines(calls.path)
    i = _find(lines, "ticket.connected", calls.happy)
    lines.insert(i + 1, lines[i])
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {i + 2}: ticket.connected of ticket {calls.happy} is impossible: the ticket is "
        f"connected since line {i + 1}; the pick-up was already reported on line {i + 1}; "
        "ticket.connected comes at most once"]


def test_nothing_but_a_close_after_failed(calls: Calls) -> None:
    lines = _lines(calls.path)
    failed = _find(lines, "ticket.failed", calls.wrong_word)
    lines.insert(failed + 1, _event(lines, failed, "ticket.verified"))
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {failed + 2}: ticket.verified of ticket {calls.wrong_word} is impossible: the "
        f"ticket is failed since line {failed + 1}; nothing but ticket.closed follows "
        "ticket.failed"]
    # … and the close that follows a failure is fine (it is in the honest bundle too).
    assert _find(lines, "ticket.closed", calls.wrong_word) > failed


def test_nothing_after_closed(calls: Calls) -> None:
    lines = _lines(calls.path)
    closed = _find(lines, "ticket.closed", calls.happy)
    lines.append(_event(lines, closed, "ticket.revoked"))
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {len(lines)}: ticket.revoked of ticket {calls.happy} is impossible: the ticket is "
        f"closed since line {closed + 1}; nothing follows ticket.closed"]


def test_a_failure_without_its_cause(calls: Calls) -> None:
    lines = _lines(calls.path)
    del lines[_find(lines, "ticket.number_denied", calls.denied)]
    _resign(calls, lines)
    failed = _find(lines, "ticket.failed", calls.denied) + 1
    claimed = _find(lines, "ticket.claimed", calls.denied) + 1
    assert _messages(calls) == [
        f"line {failed}: ticket.failed of ticket {calls.denied} (cause number_denied) is "
        "impossible: a ticket fails only right after ticket.number_denied, ticket.word_wrong or "
        f"alert.claimed_elsewhere (the ticket is claimed since line {claimed})"]


def test_a_cause_without_its_failure_and_a_wrong_cause(calls: Calls) -> None:
    lines = _lines(calls.path)
    alert = _find(lines, "alert.claimed_elsewhere", calls.relayed)
    failed = _find(lines, "ticket.failed", calls.relayed)
    lines[failed] = _event(lines, failed, "ticket.failed", cause="wrong_word")
    denied = _find(lines, "ticket.number_denied", calls.denied)
    del lines[denied + 1]  # its ticket.failed
    _resign(calls, lines)
    messages = _messages(calls)
    assert f"line {denied + 1}: ticket.number_denied of ticket {calls.denied} is not followed " \
           "by its ticket.failed (cause number_denied)" in messages
    assert any(m.startswith(f"line {failed + 1 - (failed > denied)}: ticket.failed of ticket "
                            f"{calls.relayed} gives the cause wrong_word, but it follows "
                            f"alert.claimed_elsewhere (line {alert + 1 - (alert > denied)})")
               for m in messages), messages
    assert len(messages) == 2


def test_a_claim_after_expiry(calls: Calls) -> None:
    lines = _lines(calls.path)
    issued = _find(lines, "ticket.issued", calls.waiting)
    token = json.loads(lines[issued])["data"]["ticket"]
    from callproof.protocol.jws import b64url_decode

    exp = json.loads(b64url_decode(token.split(".")[1]))["exp"]
    lines.append(_event(lines, issued, "ticket.claimed", at=exp))
    lines.append(_event(lines, issued, "ticket.closed", at=exp + 5))  # closing is still fine
    _resign(calls, lines)
    assert _messages(calls) == [
        f"line {len(lines) - 1}: ticket.claimed of ticket {calls.waiting} is impossible: the "
        f"ticket is expired since line {issued + 1}; it expired at {exp} (logged at {exp}); only "
        "ticket.closed follows expiry"]


def test_the_cli_names_the_impossible_step(calls: Calls) -> None:
    lines = _lines(calls.path)
    del lines[_find(lines, "ticket.number_confirmed", calls.happy)]
    _resign(calls, lines)
    out = CliRunner().invoke(cli, ["audit", "verify", str(calls.path), "--log-key", calls.vkey])
    assert out.exit_code == 1
    assert "FAILED: line " in out.output and "ticket.verified of ticket" in out.output
    assert "1 failure in" in out.output


# --- signatures on all cores -------------------------------------------------------------------


@pytest.mark.slow
def test_the_parallel_check_finds_exactly_what_the_serial_one_finds(
        calls: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(calls.path)
    lines.insert(_find(lines, "ticket.claimed", calls.happy) + 1,
                 lines[_find(lines, "ticket.claimed", calls.happy)])
    i = _find(lines, "ticket.issued", calls.denied)
    e = json.loads(lines[i])
    head, payload, sig = e["data"]["ticket"].split(".")
    e["data"]["ticket"] = f"{head}.{payload}.{sig[:-4]}AAAA"
    lines[i] = Event(e["type"], e["iss"], e["at"], e["data"]).to_bytes() + b"\n"
    lines[2] = lines[2].replace(b'{"at"', b'{ "at"')
    _resign(calls, lines)
    serial = verify_bundle(calls.path, log_key=calls.vkey, workers=1)
    monkeypatch.setattr(B, "TICKETS_PER_JOB", 1)  # every ticket its own job, on two processes
    parallel = verify_bundle(calls.path, log_key=calls.vkey, workers=2)
    assert parallel.workers == 2 and serial.workers == 1
    assert len(serial.failures) == 3
    assert any(f"ticket {calls.denied}: does not verify when logged (bad_signature" in str(f)
               and f.line == i + 1 for f in serial.failures)
    assert parallel.failures == serial.failures
    assert (parallel.root, parallel.entries, parallel.tickets) == \
        (serial.root, serial.entries, serial.tickets)


@pytest.mark.slow
def test_lines_scanned_on_workers_fail_as_in_one_process(
        calls: Calls, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(calls.path)
    issued = lines[_find(lines, "ticket.issued", calls.happy)]
    failed = _find(lines, "ticket.failed", calls.denied)
    lines[failed] = _event(lines, failed, "ticket.closed")  # its cause is left without a failure
    lines.insert(1, _event(lines, _find(lines, "ticket.claimed", calls.happy), "ticket.claimed"))
    lines.insert(3, b"{not json\n")
    lines.insert(4, b"\n")
    lines.insert(5, issued.replace(b'"iss":"', b'"iss":"x'))  # another issuer, issued twice
    lines.append(issued)  # issued a second time
    lines.append(lines[2].rstrip(b"\n"))  # the last line lacks its newline
    _resign(calls, lines)
    seen: list[int] = []
    serial = verify_bundle(calls.path, log_key=calls.vkey, workers=1)
    monkeypatch.setattr(B, "TICKETS_PER_JOB", 1)  # chunks of about one line, on two processes
    parallel = verify_bundle(calls.path, log_key=calls.vkey, workers=2, progress=seen.append)
    assert parallel.workers == 2 and serial.workers == 1
    assert len(serial.failures) >= 8
    assert parallel.failures == serial.failures
    assert any(f.line == len(lines) and "does not end with a newline" in f.message
               for f in serial.failures)
    assert (parallel.root, parallel.entries, parallel.tickets) == \
        (serial.root, serial.entries, serial.tickets)
    assert seen == sorted(seen) and seen[-1] == len(lines)


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [True, False, None], "c": {"z": "x", "y": -3}},
    {"s": "tab\tnew\nline\u0001\u001f\u007f quote\" back\\ slash/"},
    {"s": "é 中文 \u2028 😀", "\ue000": 1, "\U0001f600": 2},  # not ASCII: the full codec
    {"big": 2**53 - 1, "small": -(2**53 - 1)},
    {"f": 1.5, "g": 1e21, "h": 0.0},
    {"empty": {}, "list": [], "nested": [[{"b": 1, "a": 2}]]},
])
def test_the_fast_canonical_check_agrees_with_rfc8785(value: dict[str, object]) -> None:
    from callproof.protocol.canonical import canonical_json, parse_json_strict

    body = canonical_json(value)
    assert scan._is_canonical(parse_json_strict(body), body)
    for other in (json.dumps(value).encode(), json.dumps(value, sort_keys=True).encode(),
                  json.dumps(value, separators=(",", ":")).encode(),
                  json.dumps(value, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode()):
        assert scan._is_canonical(parse_json_strict(other), other) == (other == body), other
    too_big = b'{"n":9007199254740992}'
    assert not scan._is_canonical(parse_json_strict(too_big), too_big)


# --- the witness quorum on verify-proof and report -----------------------------------------------


def _cosigned(c: Calls, tmp_path: Path) -> tuple[list[str], str]:
    """Two witnesses' keys, and the bundle's checkpoint cosigned by the first only."""
    keys, sigs = [], []
    for name in ("auditor.example/w1", "regulator.example/w2"):
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        verifier = note.Verifier(name, note.key_id(name, note.ALG_COSIGNATURE_V1, public),
                                 public, note.ALG_COSIGNATURE_V1)
        keys.append(verifier.to_vkey())
        text, _ = note.split_note((c.path / "checkpoint").read_text("utf-8"))
        sigs.append(note.cosign(text, name, private, 1_790_000_000))
    signed = note.add_signatures((c.path / "checkpoint").read_text("utf-8"), sigs[:1])
    return keys, signed


def test_verify_proof_and_report_check_the_witness_quorum(world: World, calls: Calls,
                                                          tmp_path: Path) -> None:
    keys, signed = _cosigned(calls, tmp_path)
    (calls.path / "checkpoint").write_text(signed, "utf-8")
    runner = CliRunner()
    # A tlog-proof carrying this cosigned checkpoint.
    lines = _lines(calls.path)
    index = _find(lines, "ticket.issued", calls.happy)
    proof = merkle.inclusion_proof(index, len(lines), merkle.subtree_hasher(
        [merkle.leaf_hash(raw[:-1]) for raw in lines]))
    from callproof.tlog.proof import TLOG_PROOF_HEADER

    text = "\n".join([TLOG_PROOF_HEADER, f"extra {B._b64(lines[index][:-1])}", f"index {index}",
                      *(B._b64(h) for h in proof)]) + "\n\n" + signed
    proof_file = tmp_path / "p.tlog-proof"
    proof_file.write_text(text, "utf-8")
    args = ["audit", "verify-proof", str(proof_file), "--log-key", calls.vkey]
    one = runner.invoke(cli, [*args, "--witness", keys[0], "--witness", keys[1], "--quorum", "1"])
    assert one.exit_code == 0, one.output
    assert "cosigned by auditor.example/w1" in one.output
    assert "regulator.example/w2" in one.output and "no cosignature" in one.output  # a warning
    two = runner.invoke(cli, [*args, "--witness", keys[0], "--witness", keys[1]])
    assert two.exit_code == 1
    assert "FAILED: witness quorum not met: 1 of the 2 given witnesses cosigned this " \
           "checkpoint, 2 required" in two.output
    plain = runner.invoke(cli, args)
    assert plain.exit_code == 0 and "note: no witness keys were given" in plain.output
    usage = runner.invoke(cli, [*args, "--quorum", "1"])
    assert usage.exit_code == 2 and "--quorum needs" in usage.output
    # The report says whether the quorum holds.
    out = tmp_path / "r.html"
    rargs = ["audit", "report", str(calls.path), "--out", str(out), "--log-key", calls.vkey,
             "--witness", keys[0], "--witness", keys[1]]
    refused = runner.invoke(cli, rargs)
    assert refused.exit_code == 0 and "does NOT verify (1 failure)" in refused.output
    assert "witness quorum not met" in out.read_text("utf-8")
    met = runner.invoke(cli, [*rargs, "--quorum", "1"])
    assert met.exit_code == 0 and "the bundle verifies" in met.output
    assert runner.invoke(cli, [*rargs[:7], "--quorum", "1"]).exit_code == 2
