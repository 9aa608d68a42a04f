"""The background worker: a deployment's duties run on timers, each by one process at a time.

A duty is a step run every few seconds — integrate the queued events and sign a checkpoint, push
the latest checkpoint to the witnesses, push the fraud desk's alerts to the webhook, the
housekeeping. Several workers may run, on one host or many: each duty runs only in the worker
holding its lease (:mod:`callproof.store.leases`, a row in the shared database). A keeper thread
renews every lease this worker holds; when a worker dies (kill -9, a lost host) its leases
expire after ``lease_seconds`` and the standby workers, which look every quarter of that, take
its duties over. A lease that is lost stops its duty at once: a step checks ``held()`` between
batches, and nothing starts without it. A duty that fails three times in a row gives its lease
up for a while, so a worker that cannot do it (a key missing on its host) does not keep it from
one that can.

    >>> worker = Worker(dep, standard_duties(dep))   # callproof.audit.duties: every duty
    >>> worker.run()                                  # until SIGTERM or SIGINT
    >>> worker.run_once()                             # or each duty once (tests, cron)

The duties of the services layer are here (:func:`alert_duty`, :func:`housekeeping_duty`); the
audit log's (integration, checkpoints, witnesses) are in :mod:`callproof.audit.duties`, which
also assembles the full list. `callproof worker` runs it; `callproof serve` embeds one.

Errors are one line in the log (repeats of the same one every minute at most); nothing secret is
logged: no key, no secret, no URL beyond its host.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from callproof.checkflow import CheckFlow
from callproof.deployment import Deployment
from callproof.errors import CallproofError, ConfigError
from callproof.idempotency import PURGE_BATCH
from callproof.idempotency import purge_expired as purge_idempotency_keys
from callproof.scam_reports import Reports
from callproof.sign_ins import SignIns
from callproof.store.leases import Lease, new_holder_id
from callproof.webhook import MAX_PER_RUN, AlertWebhook

__all__ = ["Duty", "Settings", "Worker", "alert_duty", "housekeeping_duty"]

log = logging.getLogger("callproof.worker")

#: Consecutive failures after which a worker gives a duty's lease up for a while.
GIVE_UP_AFTER = 3
#: The same error is logged again at most this often (seconds).
REPEAT_LOG_SECONDS = 60.0
#: How long a step may run before the keeper stops renewing its lease (a hung duty).
STALL_SECONDS = 300.0
#: How long a clean shutdown waits for the running steps (seconds).
SHUTDOWN_SECONDS = 15.0
#: A step that says more work is waiting runs again at once, at most this many times in a row.
MAX_STEPS_IN_A_ROW = 100

#: A duty's step: given ``held()`` (still ours? check it between batches), do one round of
#: work and say whether more is waiting already (then it runs again at once).
Step = Callable[[Callable[[], bool]], bool]


@dataclass(frozen=True)
class Duty:
    """One background duty: its lease's name, how often its step runs, and the step."""

    name: str
    every: float
    step: Step

    def __post_init__(self) -> None:
        if not 0.05 <= self.every <= 3600:
            raise ValueError(f"the duty {self.name} must run every 0.05–3600 seconds")


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError as e:
        raise ConfigError(f"{name} must be a number of seconds") from e


@dataclass(frozen=True)
class Settings:
    """How often each duty runs and how long a lease lasts (seconds). Defaults: integration
    every second (each run takes what has queued, so the fixed cost of its transaction — its
    commit's WAL flush above all — is shared by a larger batch), a checkpoint at most 2 s (or
    1000 events) after the tree grew, witnesses every 2 s, alerts every second
    (``CALLPROOF_ALERT_PUSH_SECONDS``), housekeeping every 30 s, leases of 5 s."""

    lease_seconds: float = 5.0
    integrate_every: float = 1.0
    checkpoint_seconds: float = 2.0
    checkpoint_events: int = 1000
    witness_every: float = 2.0
    alert_every: float = 1.0
    housekeeping_every: float = 30.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(alert_every=_seconds("CALLPROOF_ALERT_PUSH_SECONDS", cls.alert_every))

    def __post_init__(self) -> None:
        if not 1 <= self.lease_seconds <= 600:
            raise ConfigError("a lease lasts 1–600 seconds")
        for name in ("integrate_every", "checkpoint_seconds", "witness_every", "alert_every",
                     "housekeeping_every"):
            if not 0.05 <= getattr(self, name) <= 3600:
                raise ConfigError(f"{name.replace('_', ' ')} must be 0.05–3600 seconds")
        if not 1 <= self.checkpoint_events <= 1_000_000:
            raise ConfigError("checkpoint events must be 1–1000000")


def alert_duty(dep: Deployment, every: float) -> Duty:
    """Push the fraud desk's new alerts and the due retries to the webhook, when one is set."""
    hook = AlertWebhook(dep)

    def push_alerts(held: Callable[[], bool]) -> bool:
        if not dep.config.alerts.webhook_url:
            return False
        if hook.secret() is None:
            raise ConfigError("the alert webhook has no secret here: run `callproof desk "
                              "webhook-secret` or set CALLPROOF_WEBHOOK_SECRET")
        result = hook.push_due()
        if result.failed:  # the receiver is down or refusing: retried after its backoff
            log.warning("alerts: %d deliveries failed, %d pending", result.failed,
                        result.pending)
        return result.delivered >= MAX_PER_RUN and held()

    return Duty("alerts", every, push_alerts)


def housekeeping_duty(dep: Deployment, every: float) -> Duty:
    """Log the failed-lookup counts of every finished minute; delete per-client failure counts
    older than every window that reads them; forget scam reports' free text after its
    retention; delete expired staff sign-ins and idempotency keys older than their
    24 h (a batch a step; more waiting runs it again at once)."""
    flow, reports, sign_ins = CheckFlow(dep), Reports(dep), SignIns(dep)

    def housekeeping(held: Callable[[], bool]) -> bool:
        flow.flush_failed_lookups()
        flow.forget_old_failures()
        reports.purge_texts()
        sign_ins.purge()
        return purge_idempotency_keys(dep) >= PURGE_BATCH and held()

    return Duty("housekeeping", every, housekeeping)


@dataclass
class _State:
    """What the worker knows of one duty: when its step started (None: not running), its
    consecutive failures, and the last error logged (to log repeats once a minute)."""

    running_since: float | None = None
    failures: int = 0
    last_error: str = ""
    last_logged: float = 0.0
    resting_until: float = 0.0


class Worker:
    """Runs ``duties`` over ``dep``, each under its lease. See the module docstring."""

    def __init__(self, dep: Deployment, duties: Sequence[Duty], *, lease_seconds: float = 5.0,
                 holder: str | None = None) -> None:
        names = [d.name for d in duties]
        if len(set(names)) != len(names):
            raise ValueError("two duties with one name")
        self.dep = dep
        self.duties = list(duties)
        self.holder = holder or new_holder_id()
        self.lease_seconds = lease_seconds
        self.leases = {d.name: Lease(dep.store, dep.issuer_id, d.name, holder=self.holder,
                                     seconds=lease_seconds) for d in duties}
        self._state = {d.name: _State() for d in duties}
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"Worker({self.holder!r}, duties={[d.name for d in self.duties]})"

    def stop(self) -> None:
        """Ask :meth:`run` to stop (safe from any thread or a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def held(self) -> list[str]:
        """The duties whose lease this worker holds now."""
        return [name for name, lease in self.leases.items() if lease.held]

    # --- running -------------------------------------------------------------------------------

    def run(self, *, signals: bool = True, parent_pid: int | None = None) -> None:
        """Run every duty on its timer until :meth:`stop`, SIGTERM or SIGINT (with ``signals``,
        in the main thread), or — embedded — until the process ``parent_pid`` is gone. Then
        wait up to :data:`SHUTDOWN_SECONDS` for the running steps and give their leases up."""
        restore = self._install_signals() if signals else {}
        log.info("worker %s: started (%s)", self.holder, ", ".join(d.name for d in self.duties))
        threads = [threading.Thread(target=self._duty_loop, args=(d,), daemon=True,
                                    name=f"callproof-{d.name}") for d in self.duties]
        keeper = threading.Thread(target=self._keep_leases, daemon=True, name="callproof-leases")
        for t in [*threads, keeper]:
            t.start()
        try:
            while not self._stop.wait(0.5):
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.info("worker %s: its server is gone; stopping", self.holder)
                    self._stop.set()
        finally:
            self._stop.set()
            deadline = time.monotonic() + SHUTDOWN_SECONDS
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            keeper.join(max(0.0, deadline - time.monotonic()))
            for d, t in zip(self.duties, threads, strict=True):
                if not t.is_alive():  # a step still running keeps its lease until it expires
                    self.leases[d.name].release()
            for signum, handler in restore.items():
                signal.signal(signum, handler)
            log.info("worker %s: stopped", self.holder)

    def run_once(self) -> dict[str, bool]:
        """Each duty once, where its lease can be had (it is released after): which ran.
        A step that says more is waiting runs again, at most :data:`MAX_STEPS_IN_A_ROW` times.
        Errors are raised, not logged."""
        ran = {}
        for duty in self.duties:
            lease = self.leases[duty.name]
            ran[duty.name] = lease.acquire()
            if not ran[duty.name]:
                continue
            try:
                self._steps(duty, lease)
            finally:
                lease.release()
        return ran

    @staticmethod
    def _steps(duty: Duty, lease: Lease) -> None:
        def held() -> bool:
            return lease.held

        for _ in range(MAX_STEPS_IN_A_ROW):
            if not (duty.step(held) and held()):
                break

    def _install_signals(self) -> dict[int, signal.Handlers | Callable[[int, FrameType | None],
                                                                     object] | int | None]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("worker %s: %s; stopping", self.holder, signal.Signals(signum).name)
            self._stop.set()

        return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

    def _duty_loop(self, duty: Duty) -> None:
        lease, state = self.leases[duty.name], self._state[duty.name]
        poll = min(duty.every, self.lease_seconds / 4)  # a standby looks this often

        def held() -> bool:
            return lease.held and not self._stop.is_set()

        while not self._stop.is_set():
            if time.monotonic() < state.resting_until:
                self._stop.wait(min(poll, state.resting_until - time.monotonic()))
                continue
            if not lease.held:
                if not lease.acquire():
                    self._stop.wait(poll)
                    continue
                log.info("worker %s: took the %s lease (generation %s)", self.holder,
                         duty.name, lease.generation)
            more = False
            for _ in range(MAX_STEPS_IN_A_ROW):
                more = self._step(duty, lease, state, held)
                if not (more and held()):
                    break
            if not more:
                self._stop.wait(duty.every)

    def _step(self, duty: Duty, lease: Lease, state: _State, held: Callable[[], bool]) -> bool:
        """One step of ``duty``, never raising: a failure is one line in the log."""
        state.running_since = time.monotonic()
        try:
            more = duty.step(held)
        except CallproofError as e:
            self._failed(duty, lease, state, " ".join(str(e).split()) or e.__class__.__name__)
            return False
        except Exception as e:  # noqa: BLE001 - a duty never takes the worker down
            log.debug("%s failed", duty.name, exc_info=True)
            self._failed(duty, lease, state, f"unexpected {e.__class__.__name__}")
            return False
        finally:
            state.running_since = None
        if state.failures:
            log.info("worker %s: %s works again", self.holder, duty.name)
        state.failures, state.last_error = 0, ""
        return more

    def _failed(self, duty: Duty, lease: Lease, state: _State, message: str) -> None:
        state.failures += 1
        now = time.monotonic()
        if message != state.last_error or now - state.last_logged >= REPEAT_LOG_SECONDS:
            log.warning("worker %s: %s failed: %s", self.holder, duty.name, message)
            state.last_error, state.last_logged = message, now
        if state.failures >= GIVE_UP_AFTER and lease.held:
            rest = min(60.0, 6 * self.lease_seconds)
            log.warning("worker %s: %s failed %d times in a row; giving its lease up for %.0f s",
                        self.holder, duty.name, state.failures, rest)
            lease.release()
            state.resting_until = now + rest
            state.failures = 0

    def _keep_leases(self) -> None:
        """Renew every held lease each third of its life; stop renewing a hung step's."""
        while not self._stop.wait(self.lease_seconds / 3):
            for name, lease in self.leases.items():
                if not lease.held:
                    continue
                since = self._state[name].running_since
                if since is not None and time.monotonic() - since > STALL_SECONDS:
                    log.warning("worker %s: %s has run for over %.0f s; letting its lease go",
                                self.holder, name, STALL_SECONDS)
                    lease.lose()
                elif not lease.renew() and not self._stop.is_set() and \
                        time.monotonic() >= self._state[name].resting_until:
                    log.warning("worker %s: lost the %s lease", self.holder, name)
