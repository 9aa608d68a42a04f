"""The auditor's report, counted: what a bundle's entries say, in the company's time zone.

One pass over ``entries.jsonl`` (:func:`read_facts`) counts calls per day and per agent, failed
lookups per hour, reveals, scam reports and alerts into :class:`Facts`, then flags the anomalies
— bursts of failed lookups, an agent far above the others, calls outside working hours, reveals
with no call behind them, … — each with the figures its sentence needs. Unreadable lines are
counted and skipped: whether the entries can be trusted is the verdict's business
(:func:`callproof.auditor.bundle.verify_bundle`). The words are :mod:`callproof.auditor.report`'s,
the page :mod:`callproof.auditor.charts`'s.

    >>> facts = read_facts("bundle/", ReportOptions.parse_hours("08:00-20:00", "Asia/Taipei"))
    >>> [a.kind for a in facts.anomalies]
    ['burst', 'far_above', 'after_hours']
"""

from __future__ import annotations

import hashlib
import os
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callproof.auditor.bundle import ENTRIES
from callproof.protocol import events
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.events import Event
from callproof.protocol.jws import b64url_decode

__all__ = ["Anomaly", "Facts", "ReportOptions", "number", "read_facts"]


@dataclass(frozen=True)
class ReportOptions:
    """How to read the entries: the company's zone, its working hours (minutes after midnight)
    and the thresholds of the anomalies."""

    tz: str = "Asia/Taipei"
    work_start: int = 8 * 60
    work_end: int = 20 * 60
    far_above: float = 3.0   # an agent issuing more than this × the median of the others
    burst_ratio: float = 10.0  # an hour with this × the failed lookups of the median hour …
    burst_floor: int = 30    # … and at least this many

    @classmethod
    def parse_hours(cls, text: str, tz: str = "Asia/Taipei") -> ReportOptions:
        """``"08:00-20:00"`` → options; raises ``ValueError`` on anything else."""
        try:
            start, end = (_minutes(part) for part in text.split("-"))
        except ValueError as e:
            raise ValueError(f"working hours must look like 08:00-20:00, not {text!r}") from e
        if not 0 <= start < end <= 24 * 60:
            raise ValueError("working hours must start before they end, within one day")
        return cls(tz, start, end)

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {self.tz!r}") from e

    def hours_text(self) -> str:
        return f"{_hhmm(self.work_start)}–{_hhmm(self.work_end)}"


def _minutes(part: str) -> int:
    hh, _, mm = part.strip().partition(":")
    return int(hh) * 60 + int(mm or 0)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- the facts: one pass over entries.jsonl ------------------------------------------------


@dataclass
class DayCounts:
    issued: int = 0
    after_hours: int = 0
    checked: int = 0
    verified: int = 0
    denied: int = 0
    wrong_word: int = 0
    relayed: int = 0


@dataclass
class AgentCounts:
    issued: int = 0
    after_hours: int = 0
    verified: int = 0
    denied: int = 0


@dataclass(frozen=True)
class Anomaly:
    kind: str
    params: dict[str, Any]
    high: bool = False


@dataclass
class Facts:
    """What the bundle's entries say, counted in the company's time zone."""

    options: ReportOptions
    entries: int = 0
    unreadable: int = 0
    sha256: str = ""
    issuer: str = ""
    first_at: int | None = None
    last_at: int | None = None
    days: dict[date, DayCounts] = field(default_factory=dict)
    agents: dict[str, AgentCounts] = field(default_factory=dict)
    failed_by_hour: Counter[int] = field(default_factory=Counter)  # local hour start, epoch
    breaker: list[dict[str, Any]] = field(default_factory=list)
    reveals: Counter[tuple[date, str]] = field(default_factory=Counter)
    lonely_reveals: list[tuple[int, str]] = field(default_factory=list)  # at, agent
    refused_reveals: Counter[str] = field(default_factory=Counter)  # per agent: no call
    capped_reveals: Counter[str] = field(default_factory=Counter)  # per agent: over a cap
    reports: int = 0
    report_scripts: Counter[str] = field(default_factory=Counter)
    reports_by_day: Counter[date] = field(default_factory=Counter)
    reports_with_number: int = 0
    tampered: list[tuple[int, str, str]] = field(default_factory=list)  # at, ticket, check
    anomalies: list[Anomaly] = field(default_factory=list)
    bursts: list[int] = field(default_factory=list)  # the hours (as above) that are bursts

    def day(self, d: date) -> DayCounts:
        return self.days.get(d) or DayCounts()

    def hour_text(self, hour: int) -> str:
        start = self.local(hour)
        return f"{start:%Y-%m-%d %H:00}–{(start + timedelta(hours=1)):%H:00}"

    def when(self, at: int) -> str:
        return self.local(at).strftime("%Y-%m-%d %H:%M")

    def local(self, at: int) -> datetime:
        return datetime.fromtimestamp(at, UTC).astimezone(self.options.zone)

    def day_list(self) -> list[date]:
        if self.first_at is None or self.last_at is None:
            return []
        first, last = self.local(self.first_at).date(), self.local(self.last_at).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def hour_list(self) -> list[int]:
        """Every local hour of the covered days, as the epoch of its start."""
        days = self.day_list()
        if not days:
            return []
        zone = self.options.zone
        start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=zone)
        end = start + timedelta(days=len(days))
        first, stop = int(start.timestamp()), int(end.timestamp())
        return list(range(first, stop, 3600))


def _agent_of(token: Any) -> str:
    """The agent id in a logged ticket's payload (the verdict checks the signature)."""
    try:
        claims = parse_json_strict(b64url_decode(str(token).split(".")[1]))
        agent = claims["agt"]["id"]
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError):
        return "?"
    return agent if isinstance(agent, str) and agent else "?"


class _Reader:
    """Takes the events one by one, in log order, and counts them into the facts."""

    def __init__(self, facts: Facts) -> None:
        self.f = facts
        self.ticket_day: dict[str, tuple[date, str]] = {}
        self.connected: set[str] = set()

    def add(self, ev: Event) -> None:
        f, data, at = self.f, ev.data, ev.at
        if not isinstance(at, int):
            return
        f.issuer = f.issuer or ev.issuer
        f.first_at = at if f.first_at is None else min(f.first_at, at)
        f.last_at = at if f.last_at is None else max(f.last_at, at)
        tid = data.get("ticket_id")
        if ev.type == events.TICKET_ISSUED and isinstance(tid, str):
            when, agent = f.local(at), _agent_of(data.get("ticket"))
            of_day = when.hour * 60 + when.minute
            after = not f.options.work_start <= of_day < f.options.work_end
            day = f.days.setdefault(when.date(), DayCounts())
            who = f.agents.setdefault(agent, AgentCounts())
            day.issued += 1
            who.issued += 1
            day.after_hours += after
            who.after_hours += after
            self.ticket_day[tid] = (when.date(), agent)
        elif ev.type in _PER_TICKET and tid in self.ticket_day:
            day_key, agent = self.ticket_day[tid]
            counts = f.days[day_key]
            name = _PER_TICKET[ev.type]
            setattr(counts, name, getattr(counts, name) + 1)
            if name in ("verified", "denied"):
                who = f.agents[agent]
                setattr(who, name, getattr(who, name) + 1)
        if ev.type == events.TICKET_CONNECTED and isinstance(tid, str):
            self.connected.add(tid)
        elif ev.type == events.LOOKUPS_FAILED:
            minute, count = data.get("minute"), data.get("count")
            if isinstance(minute, int) and isinstance(count, int):
                start = f.local(minute).replace(minute=0, second=0)
                f.failed_by_hour[int(start.timestamp())] += count
        elif ev.type == events.BUDGET_TRIPPED:
            f.breaker.append({"at": at, "count": data.get("count"), "budget": data.get("budget")})
        elif ev.type == events.TAMPERED:
            f.tampered.append((at, str(tid), str(data.get("check"))))
        elif ev.type == events.REPORT_FILED:
            f.reports += 1
            f.reports_by_day[f.local(at).date()] += 1
            scripts = data.get("scripts")
            if isinstance(scripts, list):
                f.report_scripts.update(s for s in scripts if isinstance(s, str))
            f.reports_with_number += data.get("with_number") is True
        elif ev.type.startswith("reveal."):  # an app code or a phrase shown to the agent
            f.reveals[(f.local(at).date(), ev.type)] += 1
            connected = data.get("connected")
            if connected is False or (connected is None and tid not in self.connected):
                f.lonely_reveals.append((at, self.agent(data, tid)))
        elif ev.type == events.REVEAL_UNCONNECTED and data.get("allowed") is not True:
            f.refused_reveals[self.agent(data, tid)] += 1  # (an allowed one is a reveal too)
        elif ev.type == events.REVEAL_CAPPED:
            f.capped_reveals[self.agent(data, tid)] += 1

    def agent(self, data: dict[str, Any], tid: Any) -> str:
        """The agent an event names, else the one who issued its ticket."""
        agent = data.get("agent_id")
        if isinstance(agent, str) and agent:
            return agent
        return self.ticket_day[tid][1] if tid in self.ticket_day else "?"


_PER_TICKET = {events.TICKET_CLAIMED: "checked", events.TICKET_VERIFIED: "verified",
               events.NUMBER_DENIED: "denied", events.WORD_WRONG: "wrong_word",
               events.CLAIMED_ELSEWHERE: "relayed"}


def read_facts(directory: str | os.PathLike[str], options: ReportOptions | None = None, *,
               progress: Callable[[int], None] | None = None) -> Facts:
    """Count what the bundle's ``entries.jsonl`` holds; unreadable lines are counted, skipped.
    ``progress`` is called with the number of lines read so far (every 10,000, and at the
    end)."""
    facts = Facts(options or ReportOptions())
    facts.options.zone  # noqa: B018 - refuse an unknown zone before reading
    reader = _Reader(facts)
    digest = hashlib.sha256()
    try:
        with open(Path(directory) / ENTRIES, "rb") as f:
            for raw in f:
                digest.update(raw)
                facts.entries += 1
                if progress is not None and facts.entries % 10_000 == 0:
                    progress(facts.entries)
                try:
                    event = Event.from_bytes(raw.removesuffix(b"\n"))
                except (ValueError, UnicodeDecodeError):
                    facts.unreadable += 1
                    continue
                reader.add(event)
    except OSError:
        pass  # the verdict says why
    if progress is not None:
        progress(facts.entries)
    facts.sha256 = digest.hexdigest()
    facts.anomalies = _anomalies(facts)
    facts.bursts = [int(a.params["epoch"]) for a in facts.anomalies if a.kind == "burst"]
    return facts


# --- anomalies ------------------------------------------------------------------------------


def _anomalies(f: Facts) -> list[Anomaly]:
    o = f.options
    found: list[Anomaly] = []
    for at, ticket, check in f.tampered:
        found.append(Anomaly("tampered", {"when": f.when(at), "ticket": ticket,
                                          "check": check}, high=True))
    if f.lonely_reveals:
        found.append(Anomaly("lonely_reveal", {
            "count": number(len(f.lonely_reveals)), "first": f.when(f.lonely_reveals[0][0]),
            "who": _by_agent(Counter(agent for _, agent in f.lonely_reveals))}, high=True))
    if f.refused_reveals:
        found.append(Anomaly("reveal_refused", {
            "count": number(sum(f.refused_reveals.values())),
            "who": _by_agent(f.refused_reveals)}, high=True))
    # Bursts: hours far above the median hour; told against the average of the other hours.
    hours = [f.failed_by_hour.get(h, 0) for h in f.hour_list()]
    threshold = max(o.burst_floor, o.burst_ratio * max(statistics.median(hours or [0]), 1))
    calm = [n for n in hours if n < threshold]
    usual = sum(calm) / len(calm) if calm else 0.0
    for hour, count in f.failed_by_hour.most_common():
        if count >= threshold:
            found.append(Anomaly("burst", {
                "hour": f.hour_text(hour), "epoch": hour, "count": number(count),
                "typical": f"{usual:.1f}", "ratio": number(round(count / max(usual, 0.1)))},
                high=True))
    counts = {a: c.issued for a, c in f.agents.items() if c.issued}
    for agent, issued in sorted(counts.items(), key=lambda kv: -kv[1]):
        peers = [n for a, n in counts.items() if a != agent]
        med = statistics.median(peers) if len(peers) >= 2 else 0
        if med and issued > o.far_above * med:
            found.append(Anomaly("far_above", {
                "agent": agent, "count": number(issued), "median": number(med),
                "ratio": f"{issued / med:.1f}", "after": number(f.agents[agent].after_hours)},
                high=True))
    after = Counter({a: c.after_hours for a, c in f.agents.items() if c.after_hours})
    if after:
        found.append(Anomaly("after_hours", {
            "count": number(sum(after.values())), "hours": o.hours_text(), "tz": o.tz,
            "who": _by_agent(after)}))
    if f.capped_reveals:
        found.append(Anomaly("reveal_capped", {"count": number(sum(f.capped_reveals.values())),
                                               "who": _by_agent(f.capped_reveals)}))
    for trip in f.breaker:
        found.append(Anomaly("breaker", {"when": f.when(trip["at"]), "count": trip["count"],
                                         "budget": trip["budget"]}))
    relayed = sum(d.relayed for d in f.days.values())
    if relayed:
        found.append(Anomaly("relayed", {"count": number(relayed)}))
    if f.unreadable:
        found.append(Anomaly("unreadable", {"count": number(f.unreadable)}))
    return found


def _by_agent(counts: Counter[str], top: int = 5) -> str:
    """``a-006 (1,440), a-002 (3)``: the agents with the most first, at most ``top`` of them."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{a} ({number(n)})" for a, n in ranked[:top])
    return text + (", …" if len(ranked) > top else "")


def number(value: float) -> str:
    """A count with thousands separators; a fraction with one decimal."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
