"""A month of call traffic, made with the library on a fixed clock, exported as an audit bundle.

Mostly ordinary calls, most of them checked and verified by the customer, a few answered "No" or
with a wrong check word, a trickle of mistyped codes, a scam report now and then — and two
planted problems for the auditor's report to find:

- a **scam wave**: one evening hour in which thousands of codes the company never issued are
  typed into the check page (``CheckFlow.lookup`` with wrong codes; the counts are logged per
  minute by housekeeping, ``flush_failed_lookups``, as a server does), followed by scam
  reports the next day;
- a **rogue agent**: one agent who, on many nights, issues far more calls than any colleague,
  outside working hours (08:00–20:00 in the company's zone).

The bundle is written by the real command line, ``callproof audit export``.

    python -m tests.auditor.traffic /tmp/month          # a full month (~2,500 calls, ~20 s)
    callproof audit report /tmp/month/bundle --out report.html --log-key "$(cat /tmp/month/vkey)"
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from callproof import Admin, CheckFlow, FixedClock, Issuer, init_data_dir, new_client_token
from callproof.deployment import Deployment
from callproof.errors import CheckFailed
from callproof.protocol.codes import new_code
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS
from callproof.scam_reports import Reports


@dataclass(frozen=True)
class Plan:
    """How big the month is and where the planted problems are."""

    start: date = date(2026, 10, 1)
    days: int = 30
    tz: str = "Asia/Taipei"
    agents: int = 8                      # a-001 … a-008 (the three demo agents and more)
    calls_per_agent_day: int = 8         # on weekdays; half on weekends
    rogue_agent: str = "a-006"
    rogue_nights: int = 12               # nights on which the rogue agent issues calls
    rogue_calls_per_night: int = 60
    wave_day: int = 17                   # 0-based day of the scam wave …
    wave_hour: int = 21                  # … and its local hour
    wave_lookups: int = 2500
    misses_per_hour: int = 3             # at most, by day (mistyped or stale codes); 1 by night
    seed: int = 20261001

    @classmethod
    def small(cls) -> Plan:
        """A month small enough for a unit test (a few seconds)."""
        return cls(agents=5, rogue_agent="a-004", calls_per_agent_day=2, rogue_nights=10,
                   rogue_calls_per_night=20, wave_lookups=600, misses_per_hour=1)


@dataclass(frozen=True)
class Month:
    """What was generated: where it is and what was planted."""

    data_dir: Path
    bundle: Path
    vkey: str
    plan: Plan
    tickets: int
    failed_lookups: int

    @property
    def wave_start(self) -> datetime:
        """The local start of the scam wave's hour."""
        day = self.plan.start + timedelta(days=self.plan.wave_day)
        return datetime(day.year, day.month, day.day, self.plan.wave_hour,
                        tzinfo=ZoneInfo(self.plan.tz))


class _Month:
    def __init__(self, data_dir: Path, plan: Plan) -> None:
        self.plan = plan
        self.zone = ZoneInfo(plan.tz)
        self.rng = random.Random(plan.seed)
        self.clock = FixedClock(self.local(plan.start, 0))
        self._flushed_minute = -1
        init_data_dir(data_dir, now=self.clock.now())
        self.dep = Deployment.open(data_dir, clock=self.clock)
        self.issuer, self.flow = Issuer(self.dep), CheckFlow(self.dep)
        self.admin, self.reports = Admin(self.dep), Reports(self.dep)
        have = {a.agent_id for a in self.admin.agents()}
        self.agents = [f"a-{i:03d}" for i in range(1, plan.agents + 1)]
        for agent in self.agents:
            if agent not in have:
                self.admin.add_agent(agent, f"Agent {agent[2:]}", department="Customer Care")
        self.reasons = [r.code for r in self.admin.reasons()]
        self.tickets = 0
        self.failed = 0

    def local(self, day: date, hour: float) -> datetime:
        """``hour`` hours after local midnight of ``day``, as UTC."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return (midnight + timedelta(hours=hour)).astimezone(UTC)

    def at(self, when: datetime) -> None:
        """Move the clock to ``when``, never backwards (the log's times only go forward)."""
        if when > self.clock.now():
            self.clock.set(when)

    def later(self, low: float, high: float) -> None:
        self.clock.advance(seconds=self.rng.uniform(low, high))

    # --- what happens ---------------------------------------------------------------------

    def call(self, agent: str, *, rogue: bool = False) -> None:
        """One outbound call and what the customer does with its code."""
        rng = self.rng
        phone = "+8869" + "".join(rng.choice("0123456789") for _ in range(8))
        made = self.issuer.issue(agent_id=agent, reason=rng.choice(self.reasons), phone=phone)
        self.tickets += 1
        tid = made.ticket_id
        self.later(5, 25)
        self.issuer.connected(tid)
        roll = rng.random()
        if rogue:  # calls nobody expected: a few customers check them and deny the number
            if roll < 0.15:
                self.later(20, 60)
                client = new_client_token()
                self.flow.lookup(made.code, client)
                self._answer(tid, client, yes=False)
            self.later(30, 120)
            self.issuer.close(tid)
            return
        if roll < 0.62:  # checked: the number, then the check word
            self.later(20, 60)
            client = new_client_token()
            step = self.flow.lookup(made.code, client)
            if roll < 0.02:
                self._answer(tid, client, yes=False)
            else:
                self.flow.answer_number(tid, client, yes=True)
                self.later(5, 20)
                right = self.issuer.status(tid).check_word
                assert right is not None
                if roll < 0.05:
                    step = self.flow.current_step(tid, client)
                    wrong = next(w.id for w in step.choices if w.id != right.id)
                    try:
                        self.flow.choose_word(tid, client, wrong)
                    except CheckFailed:
                        pass
                else:
                    self.flow.choose_word(tid, client, right.id)
        self.later(60, 300)
        self.issuer.close(tid)

    def _answer(self, tid: str, client: str, *, yes: bool) -> None:
        try:
            self.flow.answer_number(tid, client, yes=yes)
        except CheckFailed:
            pass

    def failed_lookup(self) -> None:
        """A code that matches no live call (a well-formed code, so it is really looked up).
        Before it, what a server's housekeeping does every few seconds: finished minutes'
        failed-lookup counts become ``lookups.failed`` events."""
        minute = int(self.clock.now().timestamp()) // 60
        if minute != self._flushed_minute:
            self.flow.flush_failed_lookups()
            self._flushed_minute = minute
        try:
            self.flow.lookup(new_code(), new_client_token())
        except CheckFailed:
            self.failed += 1

    def scam_report(self, scripts: list[str], with_number: bool) -> None:
        number = "+886 2 " + "".join(self.rng.choice("0123456789") for _ in range(8)) \
            if with_number else None
        self.reports.file(scripts=scripts, caller_number=number)

    # --- the month ------------------------------------------------------------------------

    def run(self) -> None:
        p, rng = self.plan, self.rng
        # Rogue nights run to 04:00 the next morning: never on the month's last night.
        rogue_days = set(rng.sample(range(p.days - 1), min(p.rogue_nights, p.days - 1)))
        for d in range(p.days):
            day = p.start + timedelta(days=d)
            plan: list[tuple[datetime, str, str]] = []
            calls = p.calls_per_agent_day if day.weekday() < 5 else p.calls_per_agent_day // 2
            for agent in self.agents:
                for _ in range(max(0, calls + rng.randint(-1, 1))):
                    plan.append((self.local(day, rng.uniform(9, 18.5)), "call", agent))
            if d in rogue_days:  # 22:00 to 04:00 the next morning
                for _ in range(p.rogue_calls_per_night):
                    plan.append((self.local(day, rng.uniform(22, 28)), "rogue", p.rogue_agent))
            for hour in range(24):  # mistyped or stale codes: a few by day, fewer by night
                for _ in range(rng.randint(0, p.misses_per_hour if 8 <= hour < 22 else 1)):
                    plan.append((self.local(day, hour + rng.random()), "miss", ""))
            for _ in range(rng.randint(0, 1)):
                plan.append((self.local(day, rng.uniform(9, 21)), "report", ""))
            if d == p.wave_day:  # one hour of codes the company never issued
                start = self.local(day, p.wave_hour)
                for i in range(p.wave_lookups):  # spread out: below the per-minute breaker
                    plan.append((start + timedelta(seconds=3600 * i / p.wave_lookups), "miss",
                                 ""))
            if d == p.wave_day + 1:  # the morning after the wave, its victims report it
                for _ in range(max(3, p.wave_lookups // 150)):
                    plan.append((self.local(day, rng.uniform(7, 12)), "wave-report", ""))
            for when, what, agent in sorted(plan):
                self.at(when)
                if what == "call":
                    self.call(agent)
                elif what == "rogue":
                    self.call(agent, rogue=True)
                elif what == "miss":
                    self.failed_lookup()
                elif what == "report":
                    self.scam_report(rng.sample(SCRIPTS, rng.randint(1, 2)), rng.random() < 0.5)
                else:
                    self.scam_report(["refund", "transfer_or_loan"], rng.random() < 0.7)
        self.at(self.local(p.start + timedelta(days=p.days - 1), 23.99))  # the month's end
        self.flow.flush_failed_lookups()


def make_month(out: str | os.PathLike[str], plan: Plan | None = None) -> Month:
    """Generate the month into ``out/data`` and export its bundle to ``out/bundle``."""
    plan = plan or Plan()
    root = Path(out)
    data_dir, bundle = root / "data", root / "bundle"
    month = _Month(data_dir, plan)
    try:
        month.run()
    finally:
        month.dep.store.close()
    env = {**os.environ, "CALLPROOF_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "callproof", "audit"]
    subprocess.run([*cmd, "export", "--out", str(bundle)], env=env, check=True,
                   capture_output=True)
    vkey = subprocess.run([*cmd, "vkey"], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()
    (root / "vkey").write_text(vkey + "\n", "utf-8")
    return Month(data_dir, bundle, vkey, plan, month.tickets, month.failed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="a new directory: data/, bundle/ and vkey are written there")
    parser.add_argument("--small", action="store_true", help="the small month the tests use")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    month = make_month(args.out, Plan.small() if args.small else Plan())
    print(f"{month.tickets} calls, {month.failed_lookups} failed lookups in "
          f"{time.perf_counter() - started:.1f} s; bundle {month.bundle}; rogue agent "
          f"{month.plan.rogue_agent}; scam wave {month.wave_start:%Y-%m-%d %H:00} "
          f"{month.plan.tz}")


if __name__ == "__main__":
    main()
