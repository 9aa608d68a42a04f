"""`callproof worker`: the background duties on timers, and the one `callproof serve` embeds.

Several workers may run, on one host or many, over one database: each duty runs in one of them
at a time (a lease in the database) and another takes it over a few seconds after that one dies.
``--status`` shows who holds what; ``--once`` runs each duty once (for cron, or a check).

``callproof serve`` starts one as its child process (:func:`spawn_embedded`) unless told
``--no-worker``; that child stops when the server stops, or when it finds its server gone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from callproof._cli._common import deployment, emit

if TYPE_CHECKING:
    from callproof.store.leases import LeaseRow


@click.command()
@click.option("--once", is_flag=True, help="Run each duty once where its lease is free, and exit.")
@click.option("--status", is_flag=True, help="Show which worker holds each duty now, and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print JSON.")
@click.option("--lease-seconds", default=5.0, show_default=True, type=click.FloatRange(1, 600),
              help="How long a duty stays with a worker that stopped renewing it.")
@click.option("--checkpoint-seconds", default=2.0, show_default=True,
              type=click.FloatRange(0.05, 3600),
              help="Sign a checkpoint at most this long after the log grew.")
@click.option("--alert-seconds", type=click.FloatRange(0.05, 3600),
              help="How often alerts are pushed to the webhook (default 1, or "
                   "CALLPROOF_ALERT_PUSH_SECONDS).")
@click.option("--embedded-in", type=int, hidden=True,
              help="The pid of the `callproof serve` this worker belongs to: stop when it goes.")
@click.pass_context
def worker(ctx: click.Context, once: bool, status: bool, as_json: bool, lease_seconds: float,
           checkpoint_seconds: float, alert_seconds: float | None,
           embedded_in: int | None) -> None:
    """Run the background duties on timers: integration, checkpoints, witnesses, alerts.

    Integration of the audit log's events and checkpoints, witness pushes, the fraud desk's
    webhook alerts and housekeeping. Several workers may run over one database; each duty runs in
    one at a time, and another takes it over within about --lease-seconds when that one dies.
    SIGTERM or Ctrl-C stops it cleanly.
    """
    from dataclasses import replace

    from callproof.audit.duties import standard_duties
    from callproof.store.leases import holders
    from callproof.worker import Settings, Worker

    dep = deployment(ctx)
    if status:
        _print_status(dep.issuer_id, holders(dep.store, dep.issuer_id), as_json)
        return
    settings = replace(Settings.from_env(), lease_seconds=lease_seconds,
                       checkpoint_seconds=checkpoint_seconds)
    if alert_seconds is not None:
        settings = replace(settings, alert_every=alert_seconds)
    runner = Worker(dep, standard_duties(dep, settings), lease_seconds=settings.lease_seconds)
    if once:
        ran = runner.run_once()
        click.echo(", ".join(f"{name}: {'ran' if done else 'held elsewhere'}"
                             for name, done in ran.items()))
        return
    _log_to_stderr()
    runner.run(parent_pid=embedded_in)


def _print_status(issuer: str, leases: list[LeaseRow], as_json: bool) -> None:
    if as_json:
        emit([{"duty": r.name, "holder": r.holder, "live": r.live,
               "seconds_left": round(r.remaining, 1), "generation": r.generation}
              for r in leases])
        return
    if not leases:
        click.echo(f"{issuer}: no worker has run yet")
    for r in leases:
        left = f"for {r.remaining:.1f} s" if r.live else "expired"
        click.echo(f"{r.name:<13} {r.holder}  {left}  (generation {r.generation})")


def _log_to_stderr() -> None:
    """One line per event, like gunicorn's, on stderr (the embedded worker shares serve's); the
    security log (and every other ``callproof`` logger) as JSON lines (callproof.seclog)."""
    from callproof import seclog

    seclog.configure()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] "
                                           "%(message)s", "%Y-%m-%d %H:%M:%S %z"))
    for name in ("callproof.worker", "callproof.webhook"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def spawn_embedded(data_dir: Path) -> subprocess.Popen[bytes]:
    """Start `callproof worker` as a child of this `callproof serve` process: it stops with it
    (SIGTERM from :func:`stop_embedded`, Ctrl-C through the terminal, or by seeing its parent
    gone when serve was killed outright)."""
    return subprocess.Popen(  # noqa: S603 - this interpreter running callproof itself
        [sys.executable, "-m", "callproof", "--data-dir", str(data_dir), "worker",
         "--embedded-in", str(os.getpid())], stdin=subprocess.DEVNULL)


def stop_embedded(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop the embedded worker: SIGTERM, then SIGKILL if it has not stopped in ``timeout``."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)
