"""`callproof worker` (issue 11): the background duties on timers, one worker per duty by lease.

With no HTTP traffic at all, an alert reaches the webhook and the events land in a signed
checkpoint within seconds; a worker killed with -9 has its duties taken over within its lease;
`callproof serve` runs one worker beside gunicorn, and none with --no-worker.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callproof import CheckFailed, CheckFlow, Issuer, init_data_dir, new_client_token
from callproof.audit.duties import standard_duties
from callproof.deployment import Deployment
from callproof.store import schema
from callproof.store.leases import Lease, LeaseRow, holders, still_holds
from callproof.webhook import AlertWebhook
from callproof.worker import Duty, Settings, Worker

from ._processes import Receiver, alive, callproof, free_port, receiver, wait_for
from .conftest import World

DUTIES = ["alerts", "housekeeping", "log", "witnesses"]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def data(tmp_path: Path, backend: str, hook: Receiver) -> Path:
    """A data dir whose fraud desk pushes alerts to ``hook``."""
    path = tmp_path / "data"
    init_data_dir(path)
    with (path / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[alerts]\nwebhook_url = "{hook.url}"\n')
    dep = Deployment.open(path)
    try:
        assert AlertWebhook(dep).create_secret()
    finally:
        dep.store.close()
    return path


def _env(path: Path, backend: str) -> dict[str, str]:
    return {"CALLPROOF_DATA_DIR": str(path), **({"CALLPROOF_DATABASE_URL": backend}
                                                 if backend else {})}


def _say_no(dep: Deployment) -> str:
    """A customer answers "No" to a call: a number_denied alert (through the library only)."""
    call = Issuer(dep).issue(agent_id="a-002", reason="payment_failed", phone="+886955519087")
    flow, client = CheckFlow(dep), new_client_token()
    flow.lookup(call.code, client)
    with pytest.raises(CheckFailed):
        flow.answer_number(call.ticket_id, client, yes=False)
    return call.ticket_id


def _log_state(dep: Deployment) -> tuple[int, int, int]:
    """(events still queued, events in the log, size of the latest checkpoint) — read straight
    from the tables, so that looking does not integrate anything itself."""
    with dep.store.read() as conn:
        queued = conn.execute(select(func.count()).select_from(schema.event_queue)).scalar_one()
        logged = conn.execute(select(func.count()).where(
            schema.events.c.issuer_id == dep.issuer_id)).scalar_one()
        signed = conn.execute(select(func.max(schema.log_checkpoints.c.size)).where(
            schema.log_checkpoints.c.issuer_id == dep.issuer_id)).scalar()
    return int(queued), int(logged), int(signed or 0)


def _leases(dep: Deployment) -> dict[str, LeaseRow]:
    return {r.name: r for r in holders(dep.store, dep.issuer_id) if r.live}


def _pid(holder: str) -> int:
    return int(holder.split(":")[1])


# --- leases ---------------------------------------------------------------------------------


def test_a_lease_has_one_holder_and_passes_on_when_it_expires_or_is_released(
        world: World, backend: str) -> None:
    dep = world.deployment
    a = Lease(dep.store, dep.issuer_id, "log", holder="host:1:a", seconds=1)
    b = Lease(dep.store, dep.issuer_id, "log", holder="host:2:b", seconds=1)
    assert a.acquire() and a.held and a.generation == 1
    assert not b.acquire() and not b.held
    assert a.renew() and a.generation == 1  # renewing keeps the generation
    with dep.store.read() as conn:
        assert still_holds(conn, dep.store.dialect, dep.issuer_id, "log", "host:1:a", 1)
    time.sleep(1.05)
    assert not a.held  # the holder's own deadline passes first ...
    assert b.acquire() and b.generation == 2  # ... then the database lets another take it
    assert not a.acquire() and not a.renew()
    with dep.store.read() as conn:
        assert not still_holds(conn, dep.store.dialect, dep.issuer_id, "log", "host:1:a", 1)
    b.release()  # given up: taken at once, no waiting for the expiry
    assert a.acquire() and a.generation == 3
    a.release()
    assert not a.renew()  # a released lease is not renewed behind the releaser's back
    assert [r.name for r in holders(dep.store, dep.issuer_id) if r.live] == []


def test_a_lost_lease_stops_the_duty_between_batches(world: World) -> None:
    dep = world.deployment
    batches: list[int] = []

    def step(held: object) -> bool:
        batches.append(1)
        if len(batches) == 3:  # another worker takes the lease over mid-run
            lease.lose()
        return True  # always more to do

    worker = Worker(dep, [Duty("log", 0.1, step)], lease_seconds=2)
    lease = worker.leases["log"]
    assert worker.run_once() == {"log": True}
    assert len(batches) == 3


def test_a_failing_duty_gives_its_lease_up_and_other_duties_go_on(world: World,
                                                                  caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    dep = world.deployment
    ran: list[str] = []

    def broken(held: object) -> bool:
        from callproof.errors import ConfigError

        raise ConfigError("the audit log key keys/log.key is missing:\nrun init")

    def fine(held: object) -> bool:
        ran.append("fine")
        return False

    worker = Worker(dep, [Duty("log", 0.05, broken), Duty("alerts", 0.05, fine)],
                    lease_seconds=1)
    thread = threading.Thread(target=worker.run, kwargs={"signals": False})
    thread.start()
    try:
        wait_for("the lease given up", lambda: "giving its lease up" in caplog.text, 10)
        assert "log" not in worker.held() and "alerts" in worker.held()
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive() and ran
    lines = [r.getMessage() for r in caplog.records if "log failed:" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)  # one line each, logged once
    assert len(lines) == 1
    assert _leases(dep) == {}  # a clean stop gives every lease up


# --- no HTTP traffic: an alert and a checkpoint ---------------------------------------------


def test_an_alert_and_a_checkpoint_happen_with_no_http_traffic(data: Path, backend: str,
                                                               hook: Receiver) -> None:
    settings = Settings(lease_seconds=2, integrate_every=0.2, checkpoint_seconds=1,
                        alert_every=0.5)
    worker_dep, dep = Deployment.open(data), Deployment.open(data)
    worker = Worker(worker_dep, standard_duties(worker_dep, settings), lease_seconds=2)
    thread = threading.Thread(target=worker.run, kwargs={"signals": False})
    thread.start()
    try:
        wait_for("the worker holds its duties", lambda: sorted(_leases(dep)) == DUTIES, 10)
        raised = time.monotonic()
        ticket_id = _say_no(dep)  # nothing but the library: no request reaches any server
        wait_for("the alert delivered", hook.bodies, 10)
        delivered = hook.got[0][0] - raised
        assert ticket_id.encode() in hook.bodies()[0]
        assert b'"kind":"number_denied"' in hook.bodies()[0]

        def signed() -> bool:
            queued, logged, size = _log_state(dep)
            return queued == 0 and logged > 0 and size == logged

        checkpointed = wait_for("every event in a signed checkpoint", signed, 10)
    finally:
        worker.stop()
        thread.join(30)
        worker_dep.store.close()
        dep.store.close()
    assert not thread.is_alive()
    assert delivered < 5 and checkpointed < 5


# --- failover ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_killing_the_active_worker_hands_its_duties_to_another_within_the_lease(
        data: Path, backend: str, hook: Receiver, tmp_path: Path) -> None:
    lease = 2.0
    env = _env(data, backend)
    args = ["worker", "--lease-seconds", str(lease), "--checkpoint-seconds", "1",
            "--alert-seconds", "0.5"]
    dep = Deployment.open(data)
    try:
        with callproof(args, env, tmp_path / "a.log") as a:
            wait_for("worker A holds every duty", lambda: sorted(
                n for n, r in _leases(dep).items() if _pid(r.holder) == a.pid) == DUTIES, 20)
            with callproof(args, env, tmp_path / "b.log") as b:
                wait_for("worker B polls", lambda: "started" in b.output(), 20)
                time.sleep(1)
                assert {_pid(r.holder) for r in _leases(dep).values()} == {a.pid}  # A keeps all
                a.popen.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                a.popen.wait(10)
                took = wait_for("worker B takes every duty over", lambda: sorted(
                    n for n, r in _leases(dep).items() if _pid(r.holder) == b.pid) == DUTIES,
                    lease + 5, every=0.02)
                where = "postgresql" if backend else "sqlite"
                print(f"\nfailover after kill -9 ({where}): {took:.2f} s (lease {lease} s)")
                assert took <= lease + 1.5
                # B does the duties now: an alert raised after the kill is delivered.
                _say_no(dep)
                wait_for("the alert delivered by B", hook.bodies, 10)
                assert time.monotonic() - killed < lease + 10
                assert b.stop(signal.SIGTERM) == 0  # a clean stop ...
                assert _leases(dep) == {}  # ... gives its leases up at once
                assert "Traceback" not in b.output() and "stopped" in b.output()
    finally:
        dep.store.close()


# --- the worker embedded in `callproof serve` ---------------------------------------------


@pytest.mark.slow
def test_serve_runs_one_worker_beside_gunicorn_and_none_with_no_worker(
        data: Path, hook: Receiver, tmp_path: Path) -> None:
    env = {"CALLPROOF_DATA_DIR": str(data), "CALLPROOF_ALERT_PUSH_SECONDS": "0.5"}
    dep = Deployment.open(data)
    try:
        # --no-worker: the server serves, and no worker runs anywhere.
        port = free_port()
        with callproof(["serve", "--port", str(port), "--workers", "2", "--no-worker"], env,
                       tmp_path / "bare.log") as bare:
            wait_for("gunicorn listens", lambda: "Listening at" in bare.output(), 30)
            time.sleep(1.5)
            assert _leases(dep) == {}
            assert bare.stop() == 0
        # By default: ONE worker, a child of serve (not one per gunicorn worker).
        with callproof(["serve", "--port", str(port), "--workers", "2"], env,
                       tmp_path / "serve.log") as serve:
            wait_for("the embedded worker holds every duty",
                     lambda: sorted(_leases(dep)) == DUTIES, 30)
            [holder] = {r.holder for r in _leases(dep).values()}
            child = _pid(holder)
            assert child != serve.pid and _parent(child) == serve.pid
            raised = time.monotonic()
            _say_no(dep)  # no HTTP request at all
            wait_for("the alert delivered", hook.bodies, 10)
            assert hook.got[0][0] - raised < 5
            assert serve.stop() == 0
            wait_for("the embedded worker stops with serve", lambda: not alive(child), 10)
            assert "Traceback" not in serve.output()
        # serve killed outright: its worker sees it gone and stops by itself.
        with callproof(["serve", "--port", str(port), "--workers", "1"], env,
                       tmp_path / "killed.log") as serve:
            wait_for("the embedded worker holds every duty",
                     lambda: sorted(_leases(dep)) == DUTIES, 30)
            [holder] = {r.holder for r in _leases(dep).values()}
            serve.popen.send_signal(signal.SIGKILL)
            serve.popen.wait(10)
            wait_for("the orphaned worker stops", lambda: not alive(_pid(holder)), 10)
    finally:
        dep.store.close()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
