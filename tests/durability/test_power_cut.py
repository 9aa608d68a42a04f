"""Power cuts on SQLite (issue 12 item 4): a disk that keeps only fsync'd bytes, many cuts.

A process issues tickets through the library and integrates and signs checkpoints, under an
LD_PRELOAD shim (fsyncshim.c, compiled here with gcc) that keeps a durable copy of the data dir:
only what was fsync'd, renames once their directory was fsync'd. It is killed (-9) at a random
moment and the data dir is replaced by the durable copy — the disk as a power cut leaves it.
After every cut, without any repair:

- with ``synchronous=FULL`` (the default) every ticket the process acknowledged (its id written
  to the pipe only after ``Issuer.issue`` returned, i.e. after the commit) is in the database;
- the log is not bricked: a ticket is issued, the log exported (a checkpoint signed first, as
  `callproof audit export` does) and `callproof audit verify` with the pinned log key passes
  (each ticket's story included).

With ``synchronous=NORMAL`` acknowledged tickets may be lost (that is what NORMAL risks, README),
but the log must still never be bricked: the checkpoint file is written only after the database
is made durable.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from callproof import Issuer, init_data_dir
from callproof.audit.log import AuditLog
from callproof.store import schema

HERE = Path(__file__).resolve().parent
CALLPROOF = [sys.executable, "-m", "callproof"]
TOTAL_SECONDS = 75.0  # every cut of one mode together, at most


def _required() -> bool:
    return os.environ.get("CALLPROOF_REQUIRE_DEPLOY") == "1"


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fsyncshim.so, built from the repo's source (skipped without gcc, unless CI requires)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        if _required():
            pytest.fail("the power-cut tests need gcc here (apt-get install gcc)")
        pytest.skip("gcc is not installed: cannot build the fsync shim")
    out = tmp_path_factory.mktemp("shim") / "fsyncshim.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out),  # noqa: S603
                    str(HERE / "fsyncshim.c"), "-ldl", "-lpthread"], check=True, timeout=120)
    return out


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLPROOF_", "FSYNCSHIM_"))}
    env.pop("LD_PRELOAD", None)
    return {**env, "CALLPROOF_DATA_DIR": str(data), **extra}


def _durable_snapshot(data: Path, shadow: Path) -> None:
    """The disk is all durable now: the durable copy starts as the data dir."""
    os.sync()
    shutil.rmtree(shadow, ignore_errors=True)
    shutil.copytree(data, shadow, symlinks=True)


def _power_cut(data: Path, shadow: Path) -> None:
    """What the disk holds after the cut: the durable copy, nothing else."""
    shutil.rmtree(data)
    shutil.copytree(shadow, data, symlinks=True)


def _run_until_cut(shim: Path, data: Path, shadow: Path, env: dict[str, str],
                   acknowledged_before_cut: int) -> list[str]:
    """Start the issuing process under the shim; kill it -9 once it has acknowledged about
    ``acknowledged_before_cut`` tickets (plus a random few ms); return what it acknowledged."""
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, str(HERE / "_issuing.py"), str(data), "5000", "30", "7"],
        env={**env, "LD_PRELOAD": str(shim), "FSYNCSHIM_DIR": str(data),
             "FSYNCSHIM_SHADOW": str(shadow)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    acked: list[str] = []
    enough = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            acked.append(line.decode().strip())
            if len(acked) >= acknowledged_before_cut:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        enough.wait(timeout=30)
        time.sleep(random.uniform(0, 0.03))  # noqa: S311 - a random moment, not a secret
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        reader.join(timeout=30)
    assert child.stdout is not None and child.stderr is not None
    errors = child.stderr.read().decode(errors="replace")
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL, f"the issuing process ended early: {errors}"
    return acked


def _ticket_ids(data: Path) -> set[str]:
    issuer = Issuer.open(data)
    try:
        with issuer.dep.store.read() as conn:
            return set(conn.execute(select(schema.tickets.c.ticket_id)).scalars())
    finally:
        issuer.dep.store.close()


def _still_works(data: Path, env: dict[str, str], vkey: str, bundle: Path) -> None:
    """No repair: issuing and signing work, and the exported log verifies against the pinned
    key (its checks include each ticket's story)."""
    issuer = Issuer.open(data)
    try:
        issuer.issue(agent_id="a-001", reason="payment_failed", phone="+886912345678")
        shutil.rmtree(bundle, ignore_errors=True)
        AuditLog(issuer.dep).export(bundle)  # what `callproof audit export` runs: signs first
    finally:
        issuer.dep.store.close()
    done = subprocess.run([*CALLPROOF, "audit", "verify", str(bundle),  # noqa: S603
                           "--log-key", vkey], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    init_data_dir(data)
    yield data


def test_the_shim_keeps_only_fsynced_bytes(shim: Path, tmp_path: Path) -> None:
    """The fault model itself: unsynced writes and un-synced renames are gone after the cut."""
    data, shadow = tmp_path / "d", tmp_path / "shadow"
    data.mkdir()
    (data / "kept").write_text("old")
    (data / "renamed").write_text("old")
    _durable_snapshot(data, shadow)
    script = (
        "import os\n"
        "def put(name, text, sync):\n"
        "    with open(name, 'w') as f:\n"
        "        f.write(text); f.flush()\n"
        "        if sync: os.fsync(f.fileno())\n"
        "put('kept', 'synced', True)\n"
        "put('kept', 'synced, then more', False)\n"
        "put('lost', 'never synced', False)\n"
        "put('tmp1', 'new', True); os.replace('tmp1', 'renamed')\n"
        "put('tmp2', 'new', True); os.replace('tmp2', 'moved')\n"
        "d = os.open('.', os.O_RDONLY); os.fsync(d)\n"
        "put('tmp3', 'newer', True); os.replace('tmp3', 'renamed')\n")
    subprocess.run([sys.executable, "-c", script], cwd=data, check=True, timeout=60,  # noqa: S603
                   env={**os.environ, "LD_PRELOAD": str(shim), "FSYNCSHIM_DIR": str(data),
                        "FSYNCSHIM_SHADOW": str(shadow)})
    assert (data / "kept").read_text() == "synced, then more"  # before the cut: all of it
    _power_cut(data, shadow)
    assert (data / "kept").read_text() == "synced"
    assert not (data / "lost").exists()
    assert (data / "renamed").read_text() == "new"  # the later rename's directory was not synced
    assert (data / "moved").read_text() == "new"
    assert not (data / "tmp3").exists() or (data / "tmp3").read_text() == "newer"


@pytest.mark.parametrize(("synchronous", "cuts"), [("full", 10), ("normal", 3)])
def test_power_cuts_lose_no_acknowledged_ticket_and_never_brick_the_log(
        shim: Path, data_dir: Path, tmp_path: Path, synchronous: str, cuts: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(data_dir, CALLPROOF_SQLITE_SYNCHRONOUS=synchronous)
    monkeypatch.setenv("CALLPROOF_SQLITE_SYNCHRONOUS", synchronous)  # this process's checks
    vkey = subprocess.run([*CALLPROOF, "audit", "vkey"], env=env, capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()
    shadow, bundle = tmp_path / "durable", tmp_path / "bundle"
    rng = random.Random()  # noqa: S311 - where to cut, not a secret
    started = time.monotonic()
    acknowledged = lost = 0
    for cut in range(cuts):
        assert time.monotonic() - started < TOTAL_SECONDS, f"only {cut} cuts in time"
        _durable_snapshot(data_dir, shadow)
        acked = _run_until_cut(shim, data_dir, shadow, env, rng.randint(3, 40))
        _power_cut(data_dir, shadow)
        missing = set(acked) - _ticket_ids(data_dir)
        acknowledged += len(acked)
        lost += len(missing)
        if synchronous == "full":
            assert not missing, f"cut {cut}: {len(missing)} of {len(acked)} acknowledged " \
                                "tickets lost"
        _still_works(data_dir, env, vkey, bundle)
    print(f"synchronous={synchronous}: {cuts} cuts, {acknowledged} tickets acknowledged, "
          f"{lost} lost, log never bricked")
    assert acknowledged >= cuts * 3
