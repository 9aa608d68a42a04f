"""A bundle with voice-line checks verifies (`callproof audit verify`): the voice line's story —
verified with no check word, and the after-the-call claim of a closed ticket — is a possible
one, and the auditor still refuses what the voice line cannot do (spec/voice-line.md §2)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from callproof import new_client_token
from callproof._cli import cli
from callproof.audit.log import AuditLog
from callproof.protocol import states
from callproof.protocol.events import Event
from callproof.tlog import merkle, note
from callproof.voice.machine import VoiceCall
from callproof.voice.routes import Routes

from ..conftest import World

PHONE = "+886912345678"
OTHER_PHONE = "+886987654321"


def _by_phone(w: World, code: str, caller: str = PHONE) -> VoiceCall:
    voice = VoiceCall(w.deployment, caller_number=caller, channel="sip")
    voice.start()
    voice.keys("1")
    voice.keys(code)
    return voice


def _verify(path: Path, vkey: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["audit", "verify", str(path), "--log-key", vkey])
    return out.exit_code, out.output


def _resign(log: AuditLog, path: Path, lines: list[bytes]) -> None:
    """The lines and a checkpoint of exactly them, signed with the real log key: only the
    story is wrong."""
    (path / "entries.jsonl").write_bytes(b"".join(lines))
    signer = log.signer()
    root = merkle.root_hash([merkle.leaf_hash(raw[:-1]) for raw in lines])
    text = note.Checkpoint(signer.name, len(lines), root).to_text()
    (path / "checkpoint").write_text(note.sign_note(text, [signer]), "utf-8")


def test_a_bundle_with_voice_verified_tickets_verifies(world: World, tmp_path: Path) -> None:
    w = world
    Routes(w.deployment).set("a-001", transfer_target="sip:mei.lin@pbx.shop.example")
    live = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    w.issuer.connected(live.ticket_id)
    voice = _by_phone(w, live.code)
    voice.keys("1")  # put back through: ticket.called_back
    w.issuer.close(live.ticket_id)
    w.clock.advance(seconds=7)
    after = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    w.issuer.connected(after.ticket_id)
    w.issuer.close(after.ticket_id)  # the customer hung up; the dialer said so at once
    w.clock.advance(seconds=120)
    _by_phone(w, after.code)
    relayed = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    w.issuer.close(relayed.ticket_id)
    _by_phone(w, relayed.code, caller=OTHER_PHONE)
    page = w.issuer.issue(agent_id="a-001", reason="payment_failed", phone=PHONE)
    w.flow.lookup(page.code, new_client_token())
    w.issuer.close(page.ticket_id)
    _by_phone(w, page.code)  # refused: it was claimed on the page before the hang-up
    assert [w.issuer.status(t.ticket_id).state for t in (live, after, relayed, page)] == [
        states.CLOSED, states.VERIFIED, states.FAILED, states.CLOSED]

    log = AuditLog(w.deployment)
    path = tmp_path / "bundle"
    log.export(path)
    code, output = _verify(path, log.vkey())
    assert code == 0, output

    # What the voice line cannot do, the auditor refuses: a page's claim of a closed ticket
    # (here one closed after its voice check), and a voice claim of a closed ticket that had
    # been claimed before.
    lines = (path / "entries.jsonl").read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])

    def claim(ticket_id: str, **data: object) -> bytes:
        return Event(type="ticket.claimed", issuer=last["iss"], at=int(last["at"]),
                     data={"ticket_id": ticket_id, **data}).to_bytes() + b"\n"

    for forged, says in ((claim(live.ticket_id), "nothing follows ticket.closed"),
                         (claim(page.ticket_id, channel="voice"), "it was claimed on line")):
        _resign(log, path, [*lines, forged])
        code, output = _verify(path, log.vkey())
        assert code == 1 and says in output, output
