"""Scale-out on PostgreSQL: full check flows through 1, 2 and 3 `callproof serve` instances.

    python benchmarks/bench_scale.py              # about 3 minutes
    python benchmarks/bench_scale.py --quick      # CI smoke run, under a minute
    python benchmarks/bench_scale.py --instances 1,2 --seconds 60 --json scale.json

What runs, all on 127.0.0.1: a scratch PostgreSQL database (made and dropped by the run), one
data dir made by `callproof init` with ``CALLPROOF_DATABASE_URL`` pointing at it, three
`callproof serve --no-worker` instances on it (each `serve`'s own defaults: gunicorn gthread,
2 processes × 4 threads), ONE `callproof worker` (checkpoints, housekeeping, and its share of
integration), rate limits shared in Redis database 9 when Redis answers (memory otherwise), and
an integrator loop of this benchmark's own in a process apart (see below).

The load: N virtual customers per instance (``--customers``, default 12), each doing full check
flows one after another with a think time of 50–200 ms (uniform) before every step, so that the
offered load grows with the instances and the think time, not two CPUs, bounds one instance. A
flow is: the dialer issues a ticket through the API (an API key from `callproof api-keys
create`), the customer opens ``GET /``, types the code (``POST /verify``), answers yes to the phone
question (``POST /verify/number``), the agent's screen reads the check word
(``GET /api/v1/tickets/{id}``), and the customer taps it (``POST /verify/word``) and sees the call
confirmed. Forms follow their 303 to the page shown (Post/Redirect/Get); a step's latency is what
the customer waits for, the redirect included. Each request goes to the next instance in turn, as
through a load balancer without sticky sessions.

Per instance count (the first ``--warmup`` seconds of each are not counted):

- completed flows per second, failed flows, per-step p50 / p95 latency;
- database transactions committed per second (``pg_stat_database.xact_commit``: reads too, and
  the connection pool's pre-ping, one autocommit ``SELECT 1`` per checkout; PostgreSQL flushes
  these counts about once a second, so short ``--quick`` phases are rough);
- sessions waiting on a lock: ``pg_stat_activity`` rows of the bench database with
  ``wait_event_type = 'Lock'``, sampled every 50 ms — their mean, maximum and kinds;
- the serialised time per write: this benchmark runs ``integrate_queued`` itself, at the
  worker's cadence (``Settings().integrate_every``, 1 s; it was 0.25 s, with the worker's at
  0.5 s, up to 2026-12-05 08:33) in a process of its own (the worker's log duty integrates
  what is left),
  timing each call that integrated something — the call's whole transaction, so an upper bound
  of the time the integrator lock is held — and divides by the events it integrated;
- CPU: the machine's busy share of all CPUs (``/proc/stat``; other work on the machine counts
  too) and the cores used by the servers, the worker and integrator, PostgreSQL's backends of
  the bench database, and this load generator.

Then, with the servers and the worker stopped, integration alone: tickets issued in process
queue events, which ``integrate_queued`` takes 1, 10, 100 and 1,000 at a time; the calls are
fitted as a fixed cost per call plus a cost per event (the part that bounds how many events a
second one integrator can take, whatever the batch).

Baseline, in the same run and on the same database server: ``pgbench -N`` (simple update) with
8 clients per instance of the largest count (what that many instances' threads could open) for
the same measured time, on tables made by ``pgbench -i -s 1`` in the bench database.

Aims (issue 11): mean sessions waiting on a lock < 0.2 with 3 instances; completed flows per
second grow with the instances until the CPU is the limit (judged: each added instance's flows
grow by at least 0.8 of the offered load's growth, or the machine is ≥ 85 % busy where they do
not); serialised time per write ≤ 0.3 ms (under load, and the fit's per-event cost).
The benchmark reports and exits 0 whatever the figures; it fails only when a server does not
start or PostgreSQL or pgbench is missing. Every process it starts is stopped at the end, and the
scratch database dropped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _loadgen import (
    Browser,
    CpuMeter,
    FlowError,
    LockWaiters,
    Reply,
    callproof,
    commits,
    machine_line,
    percentile,
    postgres_ready,
    redis_flushed,
    scratch_database,
    spawn,
    start_servers,
    stop,
)
from callproof.worker import Settings

HERE = Path(__file__).resolve().parent
REDIS_URL = "redis://127.0.0.1:6379/9"
AGENTS = ("a-001", "a-002", "a-003")
#: The flow's steps, in order, with the names the report uses.
STEPS = {
    "issue": "API POST /tickets",
    "page": "GET /",
    "code": "POST /verify",
    "number": "POST /verify/number",
    "status": "API GET /tickets/{id}",
    "word": "POST /verify/word",
}
THREADS_PER_INSTANCE = 8  # `serve`'s default: 2 processes × 4 threads
#: The bench's own integrator runs at the worker's cadence (callproof.worker.Settings), so its
#: batches are the size the worker's own would be at this load.
INTEGRATE_EVERY = Settings().integrate_every
#: Integration alone: the batch sizes of successive calls (events queued first).
CALIBRATION = [1] * 20 + [10] * 20 + [100] * 5 + [1000] * 2
CALIBRATION_QUICK = [1] * 5 + [10] * 5 + [100] * 2
AIM_WAITING = 0.2
AIM_SERIAL_MS = 0.3


# --- the integrator this benchmark times ---------------------------------------------------------


def integrator_loop(every: float) -> None:
    """Run in a process of its own (``--integrator``): integrate every ``every`` seconds, and
    print one line per call that integrated something: its start, seconds taken, events."""
    from callproof.deployment import Deployment
    from callproof.store.integrator import integrate_queued

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    dep = Deployment.open(os.environ["CALLPROOF_DATA_DIR"])
    try:
        while not stopping.is_set():
            started = time.monotonic()
            clock = time.perf_counter()
            n = integrate_queued(dep.store)
            took = time.perf_counter() - clock
            if n:
                print(f"{started:.6f} {took:.6f} {n}", flush=True)
            stopping.wait(max(0.0, every - (time.monotonic() - started)))
    finally:
        dep.store.close()


def integrator_calibration(batches: list[int]) -> None:
    """Run in a process of its own (``--calibrate``) once nothing else integrates: queue
    ``sum(batches)`` events (tickets issued in process), then integrate them ``batches[i]`` at a
    time, printing one line per call: the batch asked for, seconds taken, events."""
    from callproof.deployment import Deployment
    from callproof.issuer import Issuer
    from callproof.store.integrator import integrate_all, integrate_queued

    dep = Deployment.open(os.environ["CALLPROOF_DATA_DIR"])
    try:
        integrate_all(dep.store)  # what the load left
        issuer = Issuer(dep)
        for _ in range(sum(batches)):
            issuer.issue(agent_id=AGENTS[0], reason="payment_failed", phone="+886912345678")
        integrate_queued(dep.store, limit=1)  # warm: the guard's first read, compiled statements
        for size in batches:
            clock = time.perf_counter()
            n = integrate_queued(dep.store, limit=size)
            print(f"{size} {time.perf_counter() - clock:.6f} {n}", flush=True)
    finally:
        dep.store.close()


def calibrate(batches: list[int], env: dict[str, str]) -> dict[str, Any]:
    """Integration alone, at fixed batch sizes: ms per call for each size, and the least-squares
    fit ``call = fixed + per_event × events`` (the per-event part is what bounds the
    deployment's write rate: one integrator can take about 1 / per_event events a second)."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--calibrate",
                           ",".join(map(str, batches))], env=env, capture_output=True,
                          text=True, timeout=600, start_new_session=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    calls = [(int(a), float(b), int(c)) for a, b, c in
             (line.split() for line in done.stdout.splitlines() if line.strip())]
    by_size: dict[int, list[tuple[float, int]]] = {}
    for size, took, n in calls:
        by_size.setdefault(size, []).append((took, n))
    sizes = {size: {"calls": len(v), "ms_per_call": 1000 * statistics.median(t for t, _ in v),
                    "ms_per_event": 1000 * sum(t for t, _ in v) / max(1, sum(n for _, n in v))}
             for size, v in sorted(by_size.items())}
    xs = [float(n) for _, _, n in calls]
    ys = [took for _, took, _ in calls]
    fixed = per_event = None
    if len(set(xs)) > 1:
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / \
            sum((x - mean_x) ** 2 for x in xs)
        per_event, fixed = 1000 * slope, 1000 * (mean_y - slope * mean_x)
    return {"sizes": sizes, "fixed_ms": fixed, "per_event_ms": per_event}


class IntegratorTimes:
    """Reads the integrator process's lines in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.calls: list[tuple[float, float, int]] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 3:
                self.calls.append((float(parts[0]), float(parts[1]), int(parts[2])))

    def between(self, start: float, end: float) -> dict[str, Any]:
        chosen = [c for c in self.calls if start <= c[0] < end]
        seconds = sum(c[1] for c in chosen)
        events = sum(c[2] for c in chosen)
        return {"calls": len(chosen), "events": events, "seconds": seconds,
                "ms_per_event": 1000 * seconds / events if events else None,
                "mean_batch": events / len(chosen) if chosen else 0.0,
                "duty": seconds / (end - start) if end > start else 0.0}


# --- the virtual customers ------------------------------------------------------------------------


@dataclass
class Records:
    """What the customers saw: (step, start, seconds) per step, flow ends, failures."""

    steps: list[tuple[str, float, float]] = field(default_factory=list)
    flows: list[float] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)


class Customer:
    """One virtual customer (with the dialer's and the agent screen's requests for its call)."""

    def __init__(self, index: int, ports: list[int], key: str, stop_at: float,
                 records: Records, think: tuple[float, float]) -> None:
        self.browser = Browser(ports, first=index)
        self.key = key
        self.stop_at = stop_at
        self.records = records
        self.think = think
        self.rng = random.Random(index)
        self.agent = AGENTS[index % len(AGENTS)]

    def pause(self) -> bool:
        """Think; False when the phase is over (the flow is dropped, not counted)."""
        time.sleep(self.rng.uniform(*self.think))
        return time.monotonic() < self.stop_at

    def timed(self, step: str, do: Callable[[], Reply]) -> Reply:
        start = time.monotonic()
        reply = do()
        self.records.steps.append((step, start, time.monotonic() - start))
        return reply

    def run(self) -> None:
        while self.pause():
            try:
                if self.flow():
                    self.records.flows.append(time.monotonic())
            except (FlowError, OSError, http.client.HTTPException, ValueError, KeyError,
                    TypeError) as e:
                self.records.failures.append((time.monotonic(), f"{type(e).__name__}: {e}"))
                self.browser.close()
                self.browser.cookies.clear()
        self.browser.close()

    def flow(self) -> bool:
        b = self.browser
        phone = f"+8869{self.rng.randrange(10**8):08d}"
        reply = self.timed("issue", lambda: b.api("POST", "/api/v1/tickets", self.key, {
            "agent_id": self.agent, "reason": "payment_failed", "phone": phone}))
        if reply.status != 201:
            raise FlowError(f"issue answered {reply.status}: {reply.text[:200]}")
        issued = json.loads(reply.text)
        ticket_id = issued["ticket_id"]
        if not self.pause():
            return False
        page = self.timed("page", lambda: b.get("/"))
        if page.status != 200:
            raise FlowError(f"GET / answered {page.status}")
        if not self.pause():
            return False
        page = self.timed("code", lambda: b.form("/verify", {"csrf_token": page.csrf(),
                                                             "code": issued["code"]}))
        expect(page, 'name="answer" value="yes"', "the phone question after the code")
        if not self.pause():
            return False
        page = self.timed("number", lambda: b.form("/verify/number", {
            "csrf_token": page.csrf(), "t": ticket_id, "answer": "yes"}))
        expect(page, 'class="button word"', "the check words after yes")
        if not self.pause():
            return False
        reply = self.timed("status", lambda: b.api("GET", f"/api/v1/tickets/{ticket_id}",
                                                   self.key))
        if reply.status != 200:
            raise FlowError(f"the ticket's status answered {reply.status}")
        word = json.loads(reply.text)["check_word"]["id"]
        expect(page, f'name="word" value="{word}"', "the agent's word among the choices")
        if not self.pause():
            return False
        page = self.timed("word", lambda: b.form("/verify/word", {
            "csrf_token": page.csrf(), "t": ticket_id, "word": word}))
        expect(page, 'class="panel confirmed"', "the call confirmed after the word")
        return True


def expect(page: Reply, marker: str, what: str) -> None:
    if page.status != 200 or marker not in page.text:
        raise FlowError(f"not {what} (status {page.status})")


# --- one phase: k instances under load ------------------------------------------------------------


def phase(ports: list[int], per_instance: int, key: str, warmup: float, seconds: float,
          think: tuple[float, float], database: str, waiters: LockWaiters,
          integrator: IntegratorTimes, groups: Callable[[], list[int]],
          roles: Callable[[int, str], str]) -> dict[str, Any]:
    records = Records()
    begin = time.monotonic()
    measure_from = begin + warmup
    stop_at = measure_from + seconds
    customers = [Customer(i, ports, key, stop_at, records, think)
                 for i in range(per_instance * len(ports))]
    threads = [threading.Thread(target=c.run, daemon=True, name=f"customer-{i}")
               for i, c in enumerate(customers)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    before, events_before = commits(database), leaves(database)
    with CpuMeter(groups, database, roles) as cpu:
        time.sleep(max(0.0, stop_at - time.monotonic()))
    after, events_after = commits(database), leaves(database)
    for thread in threads:
        thread.join(60)
    window = stop_at - measure_from
    steps = {}
    for step in STEPS:
        times = [d for s, at, d in records.steps if s == step and measure_from <= at < stop_at]
        steps[step] = {"n": len(times), "p50_ms": 1000 * percentile(times, 0.5),
                       "p95_ms": 1000 * percentile(times, 0.95)}
    flows = sum(1 for t in records.flows if measure_from <= t < stop_at)
    failures = [why for t, why in records.failures if measure_from <= t < stop_at]
    return {
        "instances": len(ports), "customers": len(customers), "seconds": window,
        "flows": flows, "flows_per_s": flows / window, "failed_flows": len(failures),
        "failures": sorted(set(failures))[:5], "steps": steps,
        "db_commits_per_s": (after - before) / window,
        "events_integrated": events_after - events_before,
        "lock_waiting": waiters.between(measure_from, stop_at),
        "integrator": integrator.between(measure_from, stop_at),
        "cpu_machine_busy": cpu.machine_busy, "cpu_cores": cpu.cores(),
    }


def leaves(database: str) -> int:
    """Events integrated so far (rows of ``events``), by anyone."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}",
                         autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def pgbench(database: str, clients: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    """``pgbench -N`` (simple update) on the bench database: its transactions per second."""
    base = ["pgbench", "-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run([*base, "-i", "-s", "1", "-q", database], env=env, check=True,
                   capture_output=True, timeout=120)
    with CpuMeter(lambda: [], database) as cpu:
        done = subprocess.run([*base, "-N", "-c", str(clients), "-j", "2", "-T",
                               str(max(1, round(seconds))), database], env=env, check=True,
                              capture_output=True, text=True, timeout=seconds + 120)
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    return {"clients": clients, "seconds": round(seconds), "tps": float(found.group(1))
            if found else 0.0, "cpu_machine_busy": cpu.machine_busy,
            "cpu_postgres_cores": cpu.cores().get("postgres", 0.0)}


# --- the report -----------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], base: dict[str, Any], calibration: dict[str, Any],
           info: dict[str, Any]) -> str:
    lines = [
        f"callproof scale-out benchmark ({info['mode']}): PostgreSQL, `callproof serve` × 1–"
        f"{results[-1]['instances']} + one `callproof worker`; {info['per_instance']} customers "
        f"per instance, think {info['think'][0] * 1000:.0f}–{info['think'][1] * 1000:.0f} ms, "
        f"{info['seconds']:g} s measured each (+{info['warmup']:g} s warm-up)",
        f"machine: {info['machine']}",
        f"rate limits in: {info['limits']}",
        f"baseline: pgbench -N, {base['clients']} clients, {base['seconds']} s: "
        f"{base['tps']:,.0f} tps (machine {100 * base['cpu_machine_busy']:.0f} % busy)",
        "",
        f"{'instances':>9} {'customers':>9} {'flows/s':>8} {'failed':>6} {'db tx/s':>8} "
        f"{'÷pgbench':>8} {'lock wait':>9} {'(max)':>5} {'ms/write':>8} {'events':>11} "
        f"{'batch':>6} {'integ.':>6} {'CPU busy':>8}",
    ]
    for r in results:
        ig, lw = r["integrator"], r["lock_waiting"]
        per_write = f"{ig['ms_per_event']:.3f}" if ig["ms_per_event"] is not None else "n/a"
        lines.append(
            f"{r['instances']:>9} {r['customers']:>9} {r['flows_per_s']:>8.1f} "
            f"{r['failed_flows']:>6} {r['db_commits_per_s']:>8.0f} "
            f"{r['db_commits_per_s'] / base['tps'] if base['tps'] else 0:>8.2f} "
            f"{lw['mean']:>9.3f} {lw['max']:>5} {per_write:>8} "
            f"{str(ig['events']) + '/' + str(r['events_integrated']):>11} "
            f"{ig['mean_batch']:>6.0f} {100 * ig['duty']:>5.0f}% "
            f"{100 * r['cpu_machine_busy']:>7.0f}%")
    lines += ["(db tx/s: transactions committed — reads, and the pool's pre-ping, an autocommit "
              "SELECT 1 per checkout, too; ÷pgbench: of the baseline's tps; lock "
              "wait: sessions waiting on a lock, mean of 50 ms samples; ms/write: the bench's "
              "integrator, transaction time ÷ events; events: integrated by it / by anyone; "
              "batch: its mean events per call; integ.: share of the time it held the lock)"]
    lines += ["", "CPU cores used (of " + str(os.cpu_count()) + "), by role:"]
    roles = sorted({role for r in results for role in r["cpu_cores"]})
    lines.append(f"{'instances':>9} " + " ".join(f"{role:>14}" for role in roles))
    for r in results:
        lines.append(f"{r['instances']:>9} " + " ".join(
            f"{r['cpu_cores'].get(role, 0.0):>14.2f}" for role in roles))
    lines += ["", "latency per step, p50 / p95 ms (forms include their 303's page):"]
    lines.append(f"{'step':<24}" + "".join(f"{str(r['instances']) + ' inst.':>16}"
                                           for r in results))
    for step, label in STEPS.items():
        lines.append(f"{label:<24}" + "".join(
            f"{r['steps'][step]['p50_ms']:>7.1f} / {r['steps'][step]['p95_ms']:<6.1f}"
            for r in results))
    for r in results:
        if r["failures"]:
            lines.append(f"failures with {r['instances']} instances: " + "; ".join(r["failures"]))
        kinds = r["lock_waiting"]["by_kind"]
        if kinds:
            lines.append(f"lock waits with {r['instances']} instances, mean by kind: " +
                         ", ".join(f"{k} {v:.3f}" for k, v in kinds.items()))
    lines += ["", "integration alone (servers and worker stopped, events queued first), "
              "by batch size:"]
    if "error" in calibration:
        lines.append(f"  failed: {calibration['error']}")
    else:
        for size, c in calibration["sizes"].items():
            lines.append(f"  {size:>5} events per call: {c['ms_per_call']:8.2f} ms per call "
                         f"(median of {c['calls']}), {c['ms_per_event']:.3f} ms per event")
        if calibration["per_event_ms"] is not None:
            ceiling = 1000 / calibration["per_event_ms"] if calibration["per_event_ms"] > 0 \
                else float("inf")
            lines.append(f"  fit: {calibration['fixed_ms']:.2f} ms per call + "
                         f"{calibration['per_event_ms']:.3f} ms per event → one integrator "
                         f"takes at most ~{ceiling:,.0f} events/s")
    lines += ["", "aims:"]
    last = results[-1]
    mean_wait = last["lock_waiting"]["mean"]
    lines.append(f"- mean sessions waiting on a lock with {last['instances']} instances: "
                 f"{mean_wait:.3f} (aim < {AIM_WAITING}) — "
                 f"{'meets' if mean_wait < AIM_WAITING else 'MISSES'}")
    growth = " → ".join(f"{r['flows_per_s']:.1f}" for r in results)
    busy = " → ".join(f"{100 * r['cpu_machine_busy']:.0f} %" for r in results)
    lines.append(f"- flows/s by instances: {growth} (×{last['flows_per_s'] / results[0]['flows_per_s'] if results[0]['flows_per_s'] else 0:.2f}); "  # noqa: E501
                 f"machine CPU busy: {busy}; offered load ×{last['customers'] / results[0]['customers']:.0f}")  # noqa: E501
    lines.append("  " + growth_verdict(results))
    writes: list[float] = [r["integrator"]["ms_per_event"] for r in results
                           if r["integrator"]["ms_per_event"] is not None]
    if writes:
        worst = max(writes)
        lines.append(f"- serialised time per write under load (integrator transaction ÷ events):"
                     f" {', '.join(f'{v:.3f}' for v in writes)} ms (aim ≤ {AIM_SERIAL_MS}) — "
                     f"{'meets' if worst <= AIM_SERIAL_MS else 'MISSES'}")
    marginal = calibration.get("per_event_ms")
    if marginal is not None:
        lines.append(f"  per event once batches are large (the fit's slope): {marginal:.3f} ms — "
                     f"{'meets' if marginal <= AIM_SERIAL_MS else 'MISSES'}; under load the "
                     f"{calibration['fixed_ms']:.1f} ms per call is shared by a batch's events")
    else:
        lines.append("- serialised time per write: the benchmark's integrator integrated nothing")
    return "\n".join(lines)


def growth_verdict(results: list[dict[str, Any]]) -> str:
    """Whether completed flows grew with the offered load at every instance added (at least
    0.8 of its growth), or where they fell behind and whether the CPU was the limit there (the
    machine 85 % busy or more, whoever made it busy)."""
    for before, after in zip(results, results[1:], strict=False):
        offered = after["customers"] / before["customers"]
        grown = after["flows_per_s"] / before["flows_per_s"] if before["flows_per_s"] else 0.0
        if grown < 0.8 * offered:
            cpu = after["cpu_machine_busy"]
            where = (f"from {before['instances']} to {after['instances']} instances flows grew "
                     f"×{grown:.2f} for ×{offered:.2f} offered, the machine {100 * cpu:.0f} % "
                     f"busy")
            if cpu >= 0.85:
                return f"{where}: the CPU is the limit there — meets"
            return f"{where}: the CPU was NOT the limit — MISSES"
    return "grew with the offered load at every instance added — meets"


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a CI smoke run, under a minute")
    parser.add_argument("--seconds", type=float, help="measured seconds per instance count "
                                                      "(default 30, --quick 5)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first (default 4, "
                                                     "--quick 1)")
    parser.add_argument("--instances", default="1,2,3", help="instance counts (default 1,2,3)")
    parser.add_argument("--customers", type=int, help="virtual customers per instance "
                                                      "(default 12, --quick 6)")
    parser.add_argument("--think-ms", default="50,200", help="think time range (default 50,200)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    parser.add_argument("--integrator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.integrator:
        integrator_loop(INTEGRATE_EVERY)
        return 0
    if args.calibrate:
        integrator_calibration([int(n) for n in args.calibrate.split(",")])
        return 0
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 4.0)
    per_instance = args.customers or (6 if args.quick else 12)
    counts = sorted({int(n) for n in args.instances.split(",")})
    low, high = (float(x) / 1000 for x in args.think_ms.split(","))
    if (why := postgres_ready()) is not None:
        raise SystemExit(f"PostgreSQL is not reachable at 127.0.0.1:5432: {why}")
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is missing (postgresql-client)")

    started = time.monotonic()
    machine = machine_line()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPROOF_")}
    limits = "Redis database 9" if redis_flushed(REDIS_URL) else "memory (no Redis at 6379)"
    name = f"bench_scale_{os.getpid()}"
    processes: list[subprocess.Popen[Any]] = []
    roles: dict[int, str] = {}  # process group → role, for the CPU report
    with tempfile.TemporaryDirectory(prefix="callproof-scale-") as tmp, \
            scratch_database(name) as url:
        try:
            logs = Path(tmp)
            env.update({
                "CALLPROOF_DATA_DIR": f"{tmp}/data", "CALLPROOF_DATABASE_URL": url,
                "CALLPROOF_API_KEY_LIMIT": "1000000 per minute",
                "CALLPROOF_AGENT_ISSUE_LIMIT": "1000000 per minute",
                "PYTHONDONTWRITEBYTECODE": "1",
            })
            if limits.startswith("Redis"):
                env["CALLPROOF_RATELIMIT_STORAGE"] = REDIS_URL
            progress(started, f"callproof init on {name}")
            callproof("init", env=env)
            key = json.loads(callproof("api-keys", "create", "bench", "--json",
                                       env=env))["key"]
            progress(started, f"starting {max(counts)} servers and the worker")
            ports = start_servers(max(counts), env, logs, started=processes)
            for p in processes:
                roles[p.pid] = "servers"
            worker = spawn(["worker"], env, logs / "worker.log")
            processes.append(worker)
            roles[worker.pid] = "worker+integrator"
            integrator = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--integrator"], env=env,
                stdout=subprocess.PIPE, text=True, start_new_session=True)
            processes.append(integrator)
            roles[integrator.pid] = "worker+integrator"
            times = IntegratorTimes(integrator)

            def groups() -> list[int]:
                return [p.pid for p in processes]

            def role(pid: int, found: str) -> str:
                if found != "servers":
                    return found
                group = _group(pid)
                return roles.get(group, found)

            progress(started, "pgbench")
            base = pgbench(name, THREADS_PER_INSTANCE * max(counts), seconds, env)
            results = []
            with LockWaiters(name) as waiters:
                for count in counts:
                    progress(started, f"{count} instance(s), {per_instance * count} customers")
                    results.append(phase(ports[:count], per_instance, key, warmup, seconds,
                                         (low, high), name, waiters, times, groups, role))
            progress(started, "stopping the servers and the worker; integration alone")
            while processes:
                stop(processes.pop())
            calibration = calibrate(CALIBRATION_QUICK if args.quick else CALIBRATION, env)
        finally:
            progress(started, "stopping")
            for process in reversed(processes):
                stop(process)
    redis_flushed(REDIS_URL)
    info = {"mode": "quick" if args.quick else "full", "per_instance": per_instance,
            "think": (low, high), "seconds": seconds, "warmup": warmup, "machine": machine,
            "limits": limits}
    print(report(results, base, calibration, info))
    print(f"\n(took {time.monotonic() - started:.0f} s; finished "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')})")
    if args.json is not None:
        args.json.write_text(json.dumps({"info": info, "pgbench": base, "results": results,
                                         "integration_alone": calibration}, indent=2) + "\n",
                             "utf-8")
    return 0


def progress(started: float, what: str) -> None:
    print(f"[{time.monotonic() - started:5.1f} s] {what}", file=sys.stderr, flush=True)


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


if __name__ == "__main__":
    sys.exit(main())
