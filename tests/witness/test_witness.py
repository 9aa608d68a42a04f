"""Witnesses (C2SP tlog-witness, its current text): cosigning, refusals, persistence, the
monitors' view, the log's pushes and the auditor's quorum check."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select
from werkzeug.serving import make_server

from callproof import new_client_token
from callproof._cli import cli
from callproof.audit.log import AuditLog
from callproof.audit.witnessing import Refusal, WitnessEndpoint, load_witnesses, refusal
from callproof.auditor.bundle import verify_bundle
from callproof.errors import ConfigError, WitnessError
from callproof.store import schema
from callproof.tlog import merkle, note
from callproof.tlog.cosign import SIZE_CONTENT_TYPE, check_quorum, request_body
from callproof.witness.app import create_app
from callproof.witness.server import Witness, init_witness
from tests.conftest import World

ORIGIN = "shop.example/callproof-log"
NOW = 1_790_000_000


# --- a log in memory, for the witness alone ------------------------------------------------------


class MemLog:
    """A log of ``n`` leaves signed by ``signer``; ``fork`` changes one leaf's bytes."""

    def __init__(self, signer: note.Signer, *, fork: int | None = None) -> None:
        self.signer = signer
        self.fork = fork

    def leaves(self, size: int) -> list[bytes]:
        return [merkle.leaf_hash(b"entry %d%s" % (i, b"!" if i == self.fork else b""))
                for i in range(size)]

    def checkpoint(self, size: int) -> str:
        cp = note.Checkpoint(self.signer.name, size, merkle.root_hash(self.leaves(size)))
        return note.sign_note(cp.to_text(), [self.signer])

    def proof(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return merkle.consistency_proof(old, new, merkle.subtree_hasher(self.leaves(new)))

    def body(self, old: int, new: int) -> bytes:
        return request_body(old, self.proof(old, new), self.checkpoint(new))


@pytest.fixture
def signer() -> note.Signer:
    return note.Signer.generate(ORIGIN)


@pytest.fixture
def witness(tmp_path: Path, signer: note.Signer) -> Witness:
    return init_witness(tmp_path / "w", "auditor.example/w1", logs=[signer.verifier().to_vkey()])


def _client(w: Witness):  # type: ignore[no-untyped-def]
    return create_app(w).test_client()


def _post(w: Witness, body: bytes):  # type: ignore[no-untyped-def]
    return _client(w).post("/add-checkpoint", data=body)


def _state_bytes(w: Witness) -> bytes | None:
    path = w._state_file(ORIGIN)
    return path.read_bytes() if path.exists() else None


def test_a_witness_cosigns_a_first_checkpoint_and_a_consistent_second(
        witness: Witness, signer: note.Signer) -> None:
    log = MemLog(signer)
    witness.clock = lambda: NOW
    first = _post(witness, log.body(0, 5))
    assert first.status_code == 200, first.text
    [line] = first.text.splitlines()
    sig = note.Signature.from_line(line)
    text = note.split_note(log.checkpoint(5))[0]
    assert note.verify_cosignature(text, sig, witness.verifier()) == NOW
    # The cosigned checkpoint opens with the log's key and the witness's key both required.
    cosigned = note.add_signatures(log.checkpoint(5), [sig])
    note.open_note(cosigned, [signer.verifier()], required=[witness.verifier()])
    state = witness.state(ORIGIN)
    assert state is not None and (state.size, state.cosigned_at) == (5, NOW)

    witness.clock = lambda: NOW + 60
    second = _post(witness, log.body(5, 13))
    assert second.status_code == 200, second.text
    sig2 = note.Signature.from_line(second.text.strip())
    assert note.verify_cosignature(note.split_note(log.checkpoint(13))[0], sig2,
                                   witness.verifier()) == NOW + 60
    assert witness.state(ORIGIN).size == 13  # type: ignore[union-attr]
    # The same checkpoint again: cosigned again, nothing moves.
    again = _post(witness, log.body(13, 13))
    assert again.status_code == 200 and witness.state(ORIGIN).size == 13  # type: ignore[union-attr]


def test_cosignature_times_never_go_backwards(witness: Witness, signer: note.Signer) -> None:
    log = MemLog(signer)
    witness.clock = lambda: NOW
    _post(witness, log.body(0, 3))
    witness.clock = lambda: NOW - 100  # the witness's clock stepped back
    sig = note.Signature.from_line(_post(witness, log.body(3, 4)).text.strip())
    assert note.verify_cosignature(note.split_note(log.checkpoint(4))[0], sig,
                                   witness.verifier()) == NOW


def test_an_inconsistent_checkpoint_is_refused_with_422_and_the_witness_does_not_move(
        witness: Witness, signer: note.Signer) -> None:
    honest, forked = MemLog(signer), MemLog(signer, fork=2)
    assert _post(witness, honest.body(0, 5)).status_code == 200
    before = _state_bytes(witness)
    # The forked log rewrote leaf 2 and proves its own 5 → 9: the proof fails on our root.
    refused = _post(witness, forked.body(5, 9))
    assert refused.status_code == 422
    assert "consistency proof from 5 to 9 does not verify" in refused.text
    # A proof that does not verify at all (one hash flipped).
    proof = honest.proof(5, 9)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    bad = _post(witness, request_body(5, proof, honest.checkpoint(9)))
    assert bad.status_code == 422
    # Equal sizes with a proof: refused too.
    assert _post(witness, request_body(5, honest.proof(4, 5), honest.checkpoint(5))
                 ).status_code == 422
    assert _state_bytes(witness) == before
    assert witness.state(ORIGIN).size == 5  # type: ignore[union-attr]


def test_a_fork_at_the_same_size_is_a_422(witness: Witness, signer: note.Signer) -> None:
    """tlog-witness as current: old size = checkpoint size with another root is a proof that
    does not verify → 422 (v1.0.0 said 409; issue 13, item 15)."""
    assert _post(witness, MemLog(signer).body(0, 5)).status_code == 200
    before = _state_bytes(witness)
    refused = _post(witness, MemLog(signer, fork=1).body(5, 5))
    assert refused.status_code == 422 and "another root" in refused.text
    assert refused.headers["Content-Type"] != SIZE_CONTENT_TYPE
    assert _state_bytes(witness) == before


def test_a_proof_from_size_0_must_be_empty_422(witness: Witness, signer: note.Signer) -> None:
    refused = _post(witness, request_body(0, [bytes(32)], MemLog(signer).checkpoint(3)))
    assert refused.status_code == 422 and "must be empty" in refused.text
    assert witness.state(ORIGIN) is None


def test_a_bad_signature_by_a_trusted_key_is_403_even_beside_a_good_one(
        tmp_path: Path, signer: note.Signer) -> None:
    second = note.Signer.generate(ORIGIN)  # the log's next key, trusted too
    w = init_witness(tmp_path / "w2", "auditor.example/w2",
                     logs=[signer.verifier().to_vkey(), second.verifier().to_vkey()])
    good = MemLog(signer).checkpoint(3)
    text = note.split_note(good)[0]
    for bad in (note.Signature(second.name, second.key_id, bytes(64)),  # the other trusted key
                note.Signature(signer.name, signer.key_id, bytes(64))):  # a second line, bad
        refused = _post(w, request_body(0, [], good + bad.to_line() + "\n"))
        assert refused.status_code == 403 and "does not verify" in refused.text, refused.text
    assert w.state(ORIGIN) is None
    both = note.sign_note(text, [signer, second])
    assert _post(w, request_body(0, [], both)).status_code == 200


def test_unknown_and_repeated_signature_lines_are_ignored(
        witness: Witness, signer: note.Signer) -> None:
    """Issue 13, item 12: a checkpoint Go's sumdb/note accepts is cosigned, not a 400."""
    good = MemLog(signer).checkpoint(3)
    text, [own] = note.split_note(good)
    stranger = note.Signer.generate("someone.example/k").sign(text).to_line()
    head, encoded = stranger.rsplit(" ", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd = f"{head} {encoded[:-2]}{alphabet[alphabet.index(encoded[-2]) | 1]}="  # spare bits set
    assert odd != stranger and note.Signature.from_line(odd) == note.Signature.from_line(stranger)
    body = request_body(0, [], good + odd + "\n" + odd + "\n" + own.to_line() + "\n")
    answer = _post(witness, body)
    assert answer.status_code == 200, answer.text
    assert note.verify_cosignature(text, note.Signature.from_line(answer.text.strip()),
                                   witness.verifier())


def test_monitors_read_the_last_cosigned_checkpoint(witness: Witness,
                                                    signer: note.Signer) -> None:
    # The current C2SP tlog-witness text:
    # GET <prefix>/<SHA-256 of the origin, lowercase hex>/checkpoint.
    client = _client(witness)
    by_hash = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
    assert client.get(by_hash).status_code == 404  # nothing cosigned yet
    assert client.get(f"/{hashlib.sha256(b'other.example/log').hexdigest()}/checkpoint"
                      ).status_code == 404
    assert _post(witness, MemLog(signer).body(0, 4)).status_code == 200
    for path in (by_hash, f"/{ORIGIN}/checkpoint"):  # the earlier revision's path still answers
        seen = client.get(path)
        assert seen.status_code == 200 and seen.headers["Cache-Control"] == "no-store"
        opened = note.open_note(seen.text, [signer.verifier()], required=[witness.verifier()])
        assert note.Checkpoint.from_text(opened.text).size == 4
    assert f"GET {by_hash}" in client.get("/").text


def test_an_old_size_mismatch_is_a_409_with_the_witness_size(
        witness: Witness, signer: note.Signer) -> None:
    log = MemLog(signer)
    assert _post(witness, log.body(0, 6)).status_code == 200
    for old in (0, 4):
        refused = _post(witness, log.body(old, 8))
        assert refused.status_code == 409
        assert refused.headers["Content-Type"] == SIZE_CONTENT_TYPE
        assert refused.text == "6\n"
    # Rolling back is impossible: an older checkpoint with the right old size is a 400.
    older = _post(witness, request_body(6, [], log.checkpoint(4)))
    assert older.status_code == 400 and "exceeds" in older.text
    assert witness.state(ORIGIN).size == 6  # type: ignore[union-attr]


def test_signatures_origins_and_malformed_requests(witness: Witness, signer: note.Signer) -> None:
    impostor = MemLog(note.Signer.generate(ORIGIN))  # same name, another key
    refused = _post(witness, impostor.body(0, 3))
    assert refused.status_code == 403 and "not signed by a key" in refused.text
    other = MemLog(note.Signer.generate("other.example/log"))
    assert _post(witness, other.body(0, 3)).status_code == 404
    good = MemLog(signer).checkpoint(3)
    for body in (b"old 01\n\n" + good.encode(), b"old 0\n" + good.encode(),
                 b"old 0\nnot-base64\n\n" + good.encode(), b"old 0\n\nnot a note\n",
                 b"\xff\xfe", b"old 0\n" + b"AAAA\n" * 64 + b"\n" + good.encode()):
        assert _post(witness, body).status_code == 400, body[:40]
    huge = _post(witness, b"old 0\n\n" + b"x" * 70_000)
    assert huge.status_code == 413
    assert witness.state(ORIGIN) is None
    # A checkpoint that also carries unknown signatures is fine (they are ignored).
    extra = note.add_signatures(good, [note.Signer.generate("someone.example").sign(
        note.split_note(good)[0])])
    assert _post(witness, request_body(0, [], extra)).status_code == 200
    assert _client(witness).get("/add-checkpoint").status_code == 405
    assert ORIGIN in _client(witness).get("/").text


def test_the_state_survives_a_restart(witness: Witness, signer: note.Signer) -> None:
    log = MemLog(signer)
    assert _post(witness, log.body(0, 7)).status_code == 200
    reopened = Witness.open(witness.state_dir)
    assert reopened.vkey() == witness.vkey()
    assert reopened.state(ORIGIN).size == 7  # type: ignore[union-attr]
    stale = _post(reopened, log.body(0, 9))
    assert stale.status_code == 409 and stale.text == "7\n"
    assert _post(reopened, MemLog(signer, fork=3).body(7, 9)).status_code == 422
    assert _post(reopened, log.body(7, 9)).status_code == 200
    assert Witness.open(witness.state_dir).state(ORIGIN).size == 9  # type: ignore[union-attr]
    leftovers = [p.name for p in (witness.state_dir / "state").iterdir()
                 if p.name.startswith(".")]
    assert leftovers == []  # the atomic writes left no temporary file


def test_concurrent_requests_never_roll_back(witness: Witness, signer: note.Signer) -> None:
    log = MemLog(signer)
    assert _post(witness, log.body(0, 4)).status_code == 200
    results: list[int] = []

    def guarded(size: int) -> None:
        try:
            witness.add_checkpoint(log.body(4, size))
            results.append(200)
        except WitnessError as e:
            results.append(e.status)

    threads = [threading.Thread(target=guarded, args=(s,)) for s in (6, 9, 12, 15)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]  # exactly one moved it from 4
    assert witness.state(ORIGIN).size in (6, 9, 12, 15)  # type: ignore[union-attr]


def test_init_writes_a_private_key_encrypted_with_the_passphrase(
        tmp_path: Path, signer: note.Signer) -> None:
    w = init_witness(tmp_path / "w", "auditor.example/w1", passphrase=b"s3cret",
                     logs=[signer.verifier().to_vkey()])
    key = tmp_path / "w" / "witness.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in key.read_bytes()
    with pytest.raises(ConfigError, match="encrypted"):
        Witness.open(tmp_path / "w")
    assert Witness.open(tmp_path / "w", passphrase=b"s3cret").vkey() == w.vkey()
    assert w.verifier().algorithm == note.ALG_COSIGNATURE_V1
    assert note.Verifier.parse(w.vkey()) == w.verifier()
    with pytest.raises(ConfigError, match="already holds"):
        init_witness(tmp_path / "w", "auditor.example/w1")
    with pytest.raises(ConfigError, match="name"):
        init_witness(tmp_path / "x", "bad name")


def test_the_witness_cli(tmp_path: Path, signer: note.Signer,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    state = str(tmp_path / "w")
    made = runner.invoke(cli, ["witness", "init", "auditor.example/w1", "--state-dir", state,
                               "--log", signer.verifier().to_vkey()])
    assert made.exit_code == 0, made.output
    vkey = runner.invoke(cli, ["witness", "vkey", "--state-dir", state])
    assert vkey.exit_code == 0 and vkey.output.startswith("auditor.example/w1+")
    assert vkey.output.strip() in made.output
    assert note.Verifier.parse(vkey.output.strip()).algorithm == note.ALG_COSIGNATURE_V1
    other = note.Signer.generate("other.example/log").verifier().to_vkey()
    added = runner.invoke(cli, ["witness", "add-log", other, "--state-dir", state])
    assert added.exit_code == 0 and "other.example/log" in added.output
    assert set(Witness.open(state).logs()) == {ORIGIN, "other.example/log"}
    again = runner.invoke(cli, ["witness", "init", "x.example/w", "--state-dir", state])
    assert again.exit_code != 0 and "already holds" in again.output
    missing = runner.invoke(cli, ["witness", "vkey", "--state-dir", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "witness init" in missing.output


def test_witness_serve_runs_on_loopback(tmp_path: Path, signer: note.Signer) -> None:
    """`callproof witness serve` answers add-checkpoint over HTTP (a real subprocess)."""
    import subprocess
    import sys
    import time
    import urllib.request

    state = tmp_path / "w"
    init_witness(state, "auditor.example/w1", logs=[signer.verifier().to_vkey()])
    port = _free_port()
    env = {**os.environ, "CALLPROOF_WITNESS_DIR": str(state)}
    env.pop("CALLPROOF_KEY_PASSPHRASE", None)
    proc = subprocess.Popen([sys.executable, "-m", "callproof", "witness", "serve", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"the witness did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
                time.sleep(0.1)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/add-checkpoint",
                                     data=MemLog(signer).body(0, 3), method="POST")
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310
            assert response.status == 200
            assert response.read().decode().startswith("\u2014 auditor.example/w1 ")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the log's side, with witnesses served for real on 127.0.0.1 ---------------------------------


@contextmanager
def _serve(w: Witness) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(w), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Served:
    witness: Witness
    url: str


def _traffic(w: World, calls: int = 3) -> None:
    for i in range(calls):
        call = w.issuer.issue(agent_id="a-002", reason="order_delivery")
        if i % 2 == 0:
            w.flow.lookup(call.code, new_client_token())
        w.clock.advance(seconds=9)


def _configure(world: World, served: list[Served], extra: str = "") -> None:
    entries = "".join(f'\n[[witness]]\nname = "w{i + 1}"\nurl = "{s.url}"\n'
                      f'vkey = "{s.witness.vkey()}"\n' for i, s in enumerate(served))
    (world.path / "witnesses.toml").write_text(entries + extra, "utf-8")


@pytest.fixture
def two(world: World, tmp_path: Path) -> Iterator[list[Served]]:
    vkey = AuditLog(world.deployment).vkey()
    w1 = init_witness(tmp_path / "w1", "auditor.example/w1", logs=[vkey])
    w2 = init_witness(tmp_path / "w2", "regulator.example/w2", logs=[vkey])
    with _serve(w1) as u1, _serve(w2) as u2:
        served = [Served(w1, u1), Served(w2, u2)]
        _configure(world, served)
        yield served


def _stored(world: World) -> list[tuple[int, str]]:
    t = schema.witness_cosignatures
    with world.deployment.store.read() as conn:
        return [(int(r.size), r.witness) for r in conn.execute(
            select(t.c.size, t.c.witness).order_by(t.c.size, t.c.witness))]


def test_the_log_pushes_checkpoints_and_stores_the_cosignatures(
        world: World, two: list[Served], tmp_path: Path) -> None:
    log = AuditLog(world.deployment)
    _traffic(world)
    first = log.checkpoint()
    results = log.push_to_witnesses(first)
    assert [(r.witness.name, r.ok) for r in results] == [("w1", True), ("w2", True)], \
        [str(r) for r in results]
    assert _stored(world) == [(first.size, "auditor.example/w1"),
                              (first.size, "regulator.example/w2")]
    # Pushing the same checkpoint again asks nobody: the cosignatures are kept.
    assert all(r.stored for r in log.push_to_witnesses(first))

    _traffic(world, 2)
    second = log.checkpoint()
    assert all(r.ok for r in log.push_to_witnesses(second))  # with the proof first → second
    for s in two:
        assert s.witness.state(log.origin).size == second.size  # type: ignore[union-attr]
    cosigned = log.cosigned_note(second)
    opened = note.open_note(cosigned, [log.verifier()],
                            required=[s.witness.verifier() for s in two])
    assert len(opened.verified) == 3

    out = tmp_path / "bundle"
    log.export(out)
    assert (out / "checkpoint").read_text("utf-8") == cosigned
    keys = [s.witness.vkey() for s in two]
    report = verify_bundle(out, log_key=log.vkey(), witnesses=keys, quorum=2)
    assert report.ok, report.failures
    assert report.cosigned_by == ["auditor.example/w1", "regulator.example/w2"]
    assert report.notes == [] and report.warnings == []
    # A proof for a ticket carries the cosigned checkpoint too.
    tid = world.issuer.issue(agent_id="a-001", reason="payment_failed").ticket_id
    assert log.prove_ticket(tid).count("\u2014 ") == 1  # a new checkpoint: not yet cosigned
    log.push_to_witnesses()
    assert log.prove_ticket(tid).count("\u2014 ") == 3


def test_a_quorum_of_two_fails_when_only_one_witness_cosigned(
        world: World, two: list[Served], tmp_path: Path) -> None:
    log = AuditLog(world.deployment)
    _traffic(world)
    down = _free_port()
    (world.path / "witnesses.toml").write_text(
        f'[[witness]]\nurl = "{two[0].url}"\nvkey = "{two[0].witness.vkey()}"\n'
        f'[[witness]]\nurl = "http://127.0.0.1:{down}"\nvkey = "{two[1].witness.vkey()}"\n')
    results = log.push_to_witnesses(log.checkpoint(), timeout=2)
    assert results[0].ok
    assert not results[1].ok and "cannot reach" in str(results[1].error)  # reported, no crash
    assert str(results[1]).startswith("witness regulator.example/w2: did not cosign")
    out = tmp_path / "b"
    signed = log.export(out)
    assert log.latest_checkpoint().note == signed.note  # type: ignore[union-attr] # it stands
    keys = [s.witness.vkey() for s in two]
    report = verify_bundle(out, log_key=log.vkey(), witnesses=keys, quorum=2)
    [failure] = [str(f) for f in report.failures]
    assert failure.startswith("checkpoint: witness quorum not met: 1 of the 2 given witnesses "
                              "cosigned this checkpoint, 2 required (cosigned: "
                              "auditor.example/w1)")
    assert "regulator.example/w2 (" in failure and "no cosignature" in failure
    # The default quorum is every witness given; a quorum of 1 is met.
    assert not verify_bundle(out, log_key=log.vkey(), witnesses=keys).ok
    one = verify_bundle(out, log_key=log.vkey(), witnesses=keys, quorum=1)
    assert one.ok and any("regulator.example/w2" in str(w) for w in one.warnings)
    too_many = verify_bundle(out, log_key=log.vkey(), witnesses=keys[:1], quorum=2)
    assert "a quorum of 2 cannot be met by the 1 witness key given" in \
        str(too_many.failures[0])
    not_a_witness = verify_bundle(out, log_key=log.vkey(), witnesses=[log.vkey()])
    assert "is not a cosignature (type 0x04) key" in str(not_a_witness.failures[0])


def test_a_tampered_cosignature_is_rejected(world: World, two: list[Served],
                                            tmp_path: Path) -> None:
    log = AuditLog(world.deployment)
    _traffic(world)
    assert all(r.ok for r in log.push_to_witnesses(log.checkpoint()))
    out = tmp_path / "b"
    log.export(out)
    text, signatures = note.split_note((out / "checkpoint").read_text("utf-8"))
    forged = []
    for s in signatures:
        if s.name == "regulator.example/w2":  # flip one bit of its Ed25519 signature
            s = note.Signature(s.name, s.key_id, s.data[:20] + bytes([s.data[20] ^ 1])
                               + s.data[21:])
        forged.append(s)
    (out / "checkpoint").write_text(text + "\n" + "".join(s.to_line() + "\n" for s in forged))
    keys = [s.witness.vkey() for s in two]
    report = verify_bundle(out, log_key=log.vkey(), witnesses=keys, quorum=2)
    [failure] = [str(f) for f in report.failures]
    assert "witness quorum not met: 1 of the 2" in failure
    assert "regulator.example/w2" in failure and "the cosignature is invalid" in failure
    # A cosignature moved onto another checkpoint does not count either.
    other = note.Checkpoint(log.origin, 1, bytes(32)).to_text()
    with pytest.raises(note.NoteError, match="quorum not met: 0 of the 2"):
        check_quorum(note.sign_note(other, [log.signer()]) + "".join(
            s.to_line() + "\n" for s in signatures[1:]), [s.witness.verifier() for s in two])
    # A witness answering with a bad cosignature: the log refuses to keep it.
    bad = WitnessEndpoint("w1", two[0].url, two[1].witness.verifier())  # the wrong key
    _traffic(world, 1)
    [result] = log.push_to_witnesses(log.checkpoint(), witnesses=[bad])
    assert not result.ok and "no valid cosignature" in str(result.error)


def test_a_witness_ahead_of_the_log_s_records_is_retried_once_from_its_size(
        world: World, two: list[Served]) -> None:
    log = AuditLog(world.deployment)
    _traffic(world)
    first = log.checkpoint()
    assert all(r.ok for r in log.push_to_witnesses(first))
    with world.deployment.store.write() as conn:  # the log forgets what it was given
        conn.execute(delete(schema.witness_cosignatures))
    _traffic(world, 2)
    results = log.push_to_witnesses(log.checkpoint())  # sends old 0, gets 409 with first.size
    assert all(r.ok for r in results), [str(r) for r in results]


def test_a_forked_log_gets_no_cosignature(world: World, two: list[Served]) -> None:
    log = AuditLog(world.deployment)
    _traffic(world)
    assert all(r.ok for r in log.push_to_witnesses(log.checkpoint()))
    size = log.size()
    # The witness holds a checkpoint of this log at this size with another root (a fork).
    w1 = two[0].witness
    forked = note.Checkpoint(log.origin, size, bytes(32)).to_text()
    with pytest.raises(WitnessError) as refused:
        w1.add_checkpoint(request_body(size, [], note.sign_note(forked, [log.signer()])))
    assert refused.value.status == 422  # tlog-witness as current (v1.0.0 said 409)
    state = w1.state(log.origin)
    assert state is not None and state.root == log.root()


def test_the_log_says_what_each_refusal_means(world: World, two: list[Served],
                                             tmp_path: Path) -> None:
    """The log reads the current tlog-witness answers (issue 13, item 15): 422 another history,
    403 the log's key is not trusted, 404 the log is not witnessed, in the operator's words."""
    log = AuditLog(world.deployment)
    _traffic(world)
    assert all(r.ok for r in log.push_to_witnesses(log.checkpoint()))
    # w1 has seen another history: its stored root at this size is not the log's.
    w1 = two[0].witness
    state = w1.state(log.origin)
    assert state is not None
    path = w1._state_file(log.origin)
    data = json.loads(path.read_text("utf-8"))
    data["root"] = base64.b64encode(bytes(32)).decode()
    path.write_text(json.dumps(data))
    _traffic(world, 2)
    [forked] = log.push_to_witnesses(log.checkpoint(), witnesses=[
        WitnessEndpoint("w1", two[0].url, w1.verifier())])
    assert not forked.ok and "(HTTP 422" in str(forked.error)
    assert "the log showed it another history" in str(forked.error)
    # A witness that trusts another key for this origin, and one that witnesses other logs.
    stranger_key = note.Signer.generate(log.origin).verifier().to_vkey()
    w3 = init_witness(tmp_path / "w3", "auditor.example/w3", logs=[stranger_key])
    w4 = init_witness(tmp_path / "w4", "auditor.example/w4",
                      logs=[note.Signer.generate("other.example/log").verifier().to_vkey()])
    with _serve(w3) as u3, _serve(w4) as u4:
        untrusted, unknown = log.push_to_witnesses(log.checkpoint(), witnesses=[
            WitnessEndpoint("w3", u3, w3.verifier()), WitnessEndpoint("w4", u4, w4.verifier())])
    assert "does not accept the log's signature (HTTP 403" in str(untrusted.error)
    assert "callproof audit vkey" in str(untrusted.error)
    assert f"does not witness the log {log.origin} (HTTP 404)" in str(unknown.error)


def test_refusals_of_either_text_of_tlog_witness_are_read() -> None:
    def read(status: int, body: str = "", ctype: str = "text/plain", old: int = 4) -> Refusal:
        return refusal(status, ctype, body, old=old, size=9, origin=ORIGIN)

    assert read(409, "7\n", SIZE_CONTENT_TYPE) == Refusal(retry_from=7)
    # v1.0.0 answered a same-size fork with 409 naming the size sent; the current text, 422.
    assert "another history" in str(read(409, "4\n", SIZE_CONTENT_TYPE).error)
    assert "another history" in str(read(422, "forked", old=9).error)
    assert "from its checkpoint of 4 to 9 does not verify" in str(read(422, "bad proof").error)
    assert "without its size" in str(read(409, "seven").error)
    assert read(500, "oops\nmore").error == "HTTP 500: oops"


def test_witness_config_is_checked(world: World, two: list[Served]) -> None:
    path = world.path / "witnesses.toml"
    assert [w.name for w in load_witnesses(path)] == ["w1", "w2"]
    assert load_witnesses(world.path / "none.toml") == []
    log_vkey = AuditLog(world.deployment).vkey()
    for text, message in (
            ('[[witness]]\nurl = "ftp://x"\nvkey = "a+b+c"\n', "http(s)"),
            (f'[[witness]]\nurl = "http://x"\nvkey = "{log_vkey}"\n', "type 0x04"),
            ('[[witness]]\nurl = "http://x"\n', "vkey"),
            ('[[witness]]\nurl = "http://x"\nvkey = "x"\nport = 1\n', "unknown"),
            ('witness = 3\n', "array of tables")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_witnesses(path)


def test_the_cli_pushes_exports_and_checks_the_quorum(
        world: World, two: list[Served], tmp_path: Path) -> None:
    _traffic(world)
    env = {"CALLPROOF_DATA_DIR": str(world.path)}
    runner = CliRunner()
    made = runner.invoke(cli, ["audit", "checkpoint"], env=env)
    assert made.exit_code == 0, made.output
    assert "2 of 2 witnesses cosigned the checkpoint" in made.output
    assert "witness w1: cosigned size" in made.output
    assert "\u2014 auditor.example/w1 " in made.output
    assert "\u2014 regulator.example/w2 " in made.output
    vkey = AuditLog(world.deployment).vkey()
    out = tmp_path / "b"
    _traffic(world, 1)
    done = runner.invoke(cli, ["audit", "export", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert "2 of 2 witnesses cosigned" in done.output
    keys = [s.witness.vkey() for s in two]
    key_file = tmp_path / "w2.vkey"
    key_file.write_text(keys[1] + "\n")
    args = ["audit", "verify", str(out), "--log-key", vkey]
    ok = runner.invoke(cli, [*args, "--witness", keys[0], "--witness", str(key_file),
                             "--quorum", "2"])
    assert ok.exit_code == 0, ok.output
    assert "cosigned by auditor.example/w1, regulator.example/w2" in ok.output
    assert "note:" not in ok.output
    plain = runner.invoke(cli, args)
    assert plain.exit_code == 0 and "note: no witness keys were given" in plain.output
    stranger = init_witness(tmp_path / "w3", "stranger.example/w3").vkey()
    short = runner.invoke(cli, [*args, "--witness", keys[0], "--witness", stranger])
    assert short.exit_code == 1
    assert "FAILED: checkpoint: witness quorum not met: 1 of the 2 given witnesses" in short.output
    assert "stranger.example/w3" in short.output
    usage = runner.invoke(cli, [*args, "--quorum", "1"])
    assert usage.exit_code == 2 and "--quorum needs" in usage.output


def test_request_bodies_follow_the_spec() -> None:
    signed = MemLog(note.Signer.generate(ORIGIN)).checkpoint(3)
    h = bytes(range(32))
    body = request_body(2, [h], signed).decode()
    assert body == f"old 2\n{base64.b64encode(h).decode()}\n\n{signed}"
    assert json.loads(json.dumps(body)) == body
