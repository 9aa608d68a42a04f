"""The auditor's report: one self-contained HTML file made from an export bundle alone.

It reads only the bundle's files — never the store — and puts the verification verdict of
:func:`~callproof.auditor.bundle.verify_bundle` first; then the anomalies, explained in plain words,
and the figures behind them (charts as inline SVG, each with its table). No script, no external
asset, nothing personal: agents appear by id, customers not at all.

    >>> verdict = write_report("bundle/", "report.html", lang="zh-Hant", log_key=vkey,
    ...                        options=ReportOptions.parse_hours("08:00-20:00", "Asia/Taipei"))
    >>> verdict.ok
    True

Anomalies are counted here (:func:`read_facts`), in the company's time zone; the page is laid
out by :mod:`callproof.auditor.charts`; the report's words are at the end of this module.
"""

from __future__ import annotations

import hashlib
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callproof.auditor.bundle import ENTRIES, VerifyReport, verify_bundle
from callproof.auditor.charts import ReportPage, number
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.events import Event
from callproof.protocol.jws import b64url_decode

__all__ = ["LANGS", "STRINGS", "Facts", "ReportOptions", "read_facts", "render_report",
           "write_report"]


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
        if ev.type == "ticket.issued" and isinstance(tid, str):
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
        if ev.type == "ticket.connected" and isinstance(tid, str):
            self.connected.add(tid)
        elif ev.type == "lookups.failed":
            minute, count = data.get("minute"), data.get("count")
            if isinstance(minute, int) and isinstance(count, int):
                start = f.local(minute).replace(minute=0, second=0)
                f.failed_by_hour[int(start.timestamp())] += count
        elif ev.type == "alert.lookup_budget_tripped":
            f.breaker.append({"at": at, "count": data.get("count"), "budget": data.get("budget")})
        elif ev.type == "alert.tampered":
            f.tampered.append((at, str(tid), str(data.get("check"))))
        elif ev.type == "report.filed":
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
        elif ev.type == "alert.reveal_unconnected" and data.get("allowed") is not True:
            f.refused_reveals[self.agent(data, tid)] += 1  # (an allowed one is a reveal too)
        elif ev.type == "alert.reveal_capped":
            f.capped_reveals[self.agent(data, tid)] += 1

    def agent(self, data: dict[str, Any], tid: Any) -> str:
        """The agent an event names, else the one who issued its ticket."""
        agent = data.get("agent_id")
        if isinstance(agent, str) and agent:
            return agent
        return self.ticket_day[tid][1] if tid in self.ticket_day else "?"


_PER_TICKET = {"ticket.claimed": "checked", "ticket.verified": "verified",
               "ticket.number_denied": "denied", "ticket.word_wrong": "wrong_word",
               "alert.claimed_elsewhere": "relayed"}


def read_facts(directory: str | os.PathLike[str], options: ReportOptions | None = None) -> Facts:
    """Count what the bundle's ``entries.jsonl`` holds; unreadable lines are counted, skipped."""
    facts = Facts(options or ReportOptions())
    facts.options.zone  # noqa: B018 - refuse an unknown zone before reading
    reader = _Reader(facts)
    digest = hashlib.sha256()
    try:
        with open(Path(directory) / ENTRIES, "rb") as f:
            for raw in f:
                digest.update(raw)
                facts.entries += 1
                try:
                    event = Event.from_bytes(raw.removesuffix(b"\n"))
                except (ValueError, UnicodeDecodeError):
                    facts.unreadable += 1
                    continue
                reader.add(event)
    except OSError:
        pass  # the verdict says why
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


def render_report(directory: str | os.PathLike[str], *, lang: str = "en",
                  options: ReportOptions | None = None, log_key: str | None = None,
                  previous: str | bytes | None = None, now: datetime | None = None,
                  verdict: VerifyReport | None = None) -> str:
    """The report's HTML for the bundle in ``directory``, verified here unless ``verdict`` is
    given (``log_key`` pins the log key; ``previous`` is an earlier checkpoint to extend)."""
    if lang not in STRINGS:
        raise ValueError(f"no report language {lang!r}; use one of {', '.join(LANGS)}")
    facts = read_facts(directory, options)
    if verdict is None:
        verdict = verify_bundle(directory, log_key=log_key, previous=previous)
    return ReportPage(facts, verdict, STRINGS[lang], lang, pinned=log_key is not None,
                      now=now or datetime.now(UTC)).html()


def write_report(directory: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 log_key: str | None = None, previous: str | bytes | None = None,
                 **kwargs: Any) -> VerifyReport:
    """Verify the bundle and write its report to ``out``; returns the verdict."""
    verdict = verify_bundle(directory, log_key=log_key, previous=previous)
    html = render_report(directory, log_key=log_key, verdict=verdict, **kwargs)
    Path(out).write_text(html, "utf-8")
    return verdict


# --- the report's words ---------------------------------------------------------------------
# English, Taiwan's 繁體中文 and mainland 简体中文, each written for its readers (GLOSSARY.md).
# Verification failures are quoted as the verifier states them, in English.

_EN = {
    "title": "Audit report — {issuer}",
    "period": "Period {period}",
    "zone": "Times in {tz}, working hours {hours}",
    "generated": "Generated {at}",
    "footer": "Made by callproof audit report from the export bundle alone. Anyone holding the "
              "same bundle can check it again with callproof audit verify and will get the "
              "same figures.",
    "show_numbers": "Show the numbers",
    "h.verdict": "Verification verdict",
    "pass": "The bundle verifies",
    "pass.text": "All {entries} entries are covered by the log's signed checkpoint: nothing was "
                 "removed, added, changed or reordered, and all {tickets} calls were signed by "
                 "the company's keys.",
    "fail": "The bundle does NOT verify: {n} failure(s)",
    "fail.text": "The figures below are counted from the entries as given and cannot be relied "
                 "on until these failures are explained. Each failure names its line of "
                 "entries.jsonl.",
    "fail.more": "… and {n} more.",
    "cp.log": "Log",
    "cp.size": "Entries signed (tree size)",
    "cp.root": "Root hash",
    "cp.key": "Log key",
    "cp.pinned": "pinned by the auditor (--log-key)",
    "cp.unpinned": "taken from the bundle itself: this shows only that the bundle agrees with "
                   "itself. Pin the key the company published with --log-key.",
    "cp.sha": "SHA-256 of entries.jsonl",
    "h.figures": "Key figures",
    "fig.calls": "Calls issued",
    "fig.checked": "Checked by the customer",
    "fig.verified": "Of those, confirmed",
    "fig.failed": "Failed lookups",
    "fig.reports": "Scam reports",
    "fig.agents": "Agents",
    "fig.anomalies": "Anomalies",
    "h.anomalies": "Anomalies",
    "no_anomalies": "No anomalies were found: no calls outside working hours, no agent far "
                    "above the others, no burst of failed lookups.",
    "anomalies.intro": "Each finding is a reason to ask questions, not proof of wrongdoing. "
                       "The most serious come first.",
    "a.tampered.title": "A stored call did not match its code",
    "a.tampered": "On {when}, call {ticket} failed the server's own check ({check}).",
    "a.tampered.why": "The company's database was changed outside the software. Ask for the "
                      "incident record.",
    "a.lonely_reveal.title": "Reveals with no call behind them",
    "a.lonely_reveal": "{count} app codes or call phrases were revealed for calls the dialer "
                       "never reported as connected (the first on {first}). By agent: {who}.",
    "a.lonely_reveal.why": "App codes and call phrases should be revealed only during a real "
                           "call. Someone may be collecting them to pass them on.",
    "a.reveal_refused.title": "Reveals asked for with no call connected",
    "a.reveal_refused": "{count} times an agent asked for a customer's app code or call phrase "
                        "while no call was connected; each was refused. By agent: {who}.",
    "a.reveal_refused.why": "Asking for a customer's secret with no call going on may be an "
                            "attempt to collect it. Ask the agents concerned.",
    "a.reveal_capped.title": "Reveals over the hourly cap",
    "a.reveal_capped": "{count} reveals were refused because an agent or a customer had "
                       "reached the hourly cap. By agent: {who}.",
    "a.reveal_capped.why": "Many reveals in one hour is unusual; someone may be harvesting "
                           "them.",
    "a.burst.title": "Burst of failed lookups: a possible scam wave",
    "a.burst": "{hour}: {count} codes were typed that match no call; the other hours averaged "
               "{typical} ({ratio} times as many).",
    "a.burst.why": "Many people checking codes the company never issued, all at once, is the "
                   "mark of fraudsters calling in the company's name, or of someone guessing "
                   "codes. Compare with the scam reports of the same days.",
    "a.far_above.title": "Agent {agent} issued far more calls than colleagues",
    "a.far_above": "Agent {agent} issued {count} calls, {ratio} times the median of the other "
                   "agents ({median}). {after} of them were outside working hours.",
    "a.far_above.why": "An account issuing calls in bulk may be shared, stolen or misused to "
                       "lend the company's name to other calls. Ask who used it, and why.",
    "a.after_hours.title": "Calls outside working hours",
    "a.after_hours": "{count} calls were issued outside {hours} ({tz}). By agent: {who}.",
    "a.after_hours.why": "The call centre does not call customers at night. Check each of "
                         "these calls against the dialer's records.",
    "a.breaker.title": "The lookup brake engaged",
    "a.breaker": "On {when}, {count} failed lookups in one minute went over the limit of "
                 "{budget}; lookups were paused for a few minutes.",
    "a.breaker.why": "The brake protects codes against guessing. While it was on, real "
                     "customers could not check their calls either.",
    "a.relayed.title": "Codes entered on a second device",
    "a.relayed": "{count} times, a code already being checked was entered on another device; "
                 "those calls were ended.",
    "a.relayed.why": "A fraudster passing a real call's code on to a victim causes exactly "
                     "this. Each such call was stopped.",
    "a.unreadable.title": "Unreadable entries",
    "a.unreadable": "{count} lines of entries.jsonl could not be read as events; they are left "
                    "out of the figures.",
    "a.unreadable.why": "The verdict above lists them by line number.",
    "h.calls": "Calls per day",
    "calls.desc": "Columns: calls issued per day, within and outside working hours. The table "
                  "after the chart gives the numbers.",
    "calls.text": "Every call an agent placed with a call code, by the day it was issued; "
                  "calls outside working hours ({hours}) in amber.",
    "inside": "Within working hours",
    "outside": "Outside working hours",
    "col.day": "Day",
    "col.calls": "Calls",
    "h.verified": "Share of checked calls confirmed",
    "verified.desc": "Line: per day, the share of the calls checked by their customer that "
                     "ended confirmed with the right check word.",
    "verified.text": "Of the calls whose customer checked the call code, the share confirmed "
                     "with the right check word. A drop means many customers met a wrong "
                     "number or a wrong word.",
    "col.checked": "Checked",
    "col.verified": "Confirmed",
    "col.share": "Share confirmed",
    "h.failed": "Failed lookups per hour",
    "failed.desc": "Columns: per hour, the codes typed on the call check page that matched no "
                   "call. Bursts are red.",
    "failed.text": "Codes typed on the call check page that matched no live call, counted per "
                   "minute by the log (what was typed is never kept). A few an hour are typing "
                   "mistakes; a spike means many people were given codes the company never "
                   "issued.",
    "col.hour": "Hour",
    "col.failed": "Failed lookups",
    "h.no": "“No” answers and wrong check words",
    "no.desc": "Columns: per day, “No” answers and wrong check words.",
    "no.text": "“No”: the customer's phone does not end in the digits the call was placed to. "
               "Wrong word: the customer picked another check word than the agent said. Both "
               "end the check: the call cannot be confirmed.",
    "col.denied": "“No” answers",
    "col.wrong": "Wrong check words",
    "h.agents": "Calls per agent",
    "agents.desc": "Bars: calls issued per agent, within and outside working hours.",
    "agents.text": "Agents appear by id only. An agent is flagged when issuing more than "
                   "{ratio} times the median of the others. The robust z-score (0.6745 × the "
                   "distance from the median ÷ the median absolute deviation) shows the same "
                   "on a common scale; above 3.5 is unusual.",
    "col.agent": "Agent",
    "col.ratio": "× median",
    "col.z": "Robust z",
    "h.reveals": "App code and call phrase reveals",
    "reveals.desc": "Columns: reveals per day, by kind.",
    "reveal.app_code": "App codes",
    "reveal.phrase": "Call phrases",
    "reveals.text": "Each reveal should belong to a call that was connected; reveals with no "
                    "call behind them are listed among the anomalies.",
    "h.reports": "Scam reports by script",
    "reports.desc": "Bars: scam reports by what the caller asked for.",
    "reports.text": "{n} reports were filed by people who could not confirm a call, "
                    "{with_number} of them with the calling number (the numbers stay with the "
                    "company and are not in the bundle). What the caller asked for:",
    "reports.none": "No scam reports were filed in this period.",
    "reports.per_day": "Scam reports per day",
    "col.reports": "Reports",
    "col.script": "What the caller asked for",
    "script.refund": "A refund or a “double charge”",
    "script.verification_code": "A verification code",
    "script.card_or_bank": "Card or bank details",
    "script.screen_sharing": "Sharing the screen",
    "script.transfer_or_loan": "A transfer or a loan",
    "script.install_app": "Installing an app",
    "script.open_link": "Opening a link",
    "h.about": "About this report",
    "about.source": "Made from the export bundle alone ({entries} entries), with no access to "
                    "the company's systems. The figures are counted from the entries; the "
                    "verdict above says whether they are the company's complete, signed log.",
    "about.method": "Times are in {tz}; working hours are {hours}. Thresholds: an agent is far "
                    "above peers at more than {ratio} times the median of the others; an hour "
                    "is a burst at {burst} times the failed lookups of the median hour, and at "
                    "least {floor}.",
    "about.privacy": "The bundle holds no personal data: no phone numbers (signed calls carry "
                     "only the last four digits, not shown here), no customer names, no codes, "
                     "nothing a customer typed. This report adds none: agents appear by id.",
}

_ZH_HANT = {
    "title": "稽核報告 — {issuer}",
    "period": "期間 {period}",
    "zone": "時間以 {tz} 顯示，上班時間 {hours}",
    "generated": "產生於 {at}",
    "footer": "本報告由 callproof audit report 僅依匯出包產生。持有同一匯出包者，可用 "
              "callproof audit verify 再次驗證，並會得到相同的數字。",
    "show_numbers": "顯示數據",
    "h.verdict": "驗證結果",
    "pass": "匯出包驗證通過",
    "pass.text": "全部 {entries} 筆紀錄都在日誌已簽署的檢查點內：沒有紀錄被刪除、新增、修改或調換"
                 "順序，{tickets} 通外撥電話都由公司的金鑰簽署。",
    "fail": "匯出包驗證未通過：{n} 項錯誤",
    "fail.text": "以下數字依匯出包現有紀錄計算，在這些錯誤查明之前不可採信。每項錯誤都標示 "
                 "entries.jsonl 的行號。",
    "fail.more": "……另有 {n} 項。",
    "cp.log": "日誌",
    "cp.size": "已簽署紀錄數（樹大小）",
    "cp.root": "根雜湊值",
    "cp.key": "日誌金鑰",
    "cp.pinned": "由稽核人員指定（--log-key）",
    "cp.unpinned": "取自匯出包本身：只能證明匯出包前後一致。請以 --log-key 指定公司公布的金鑰。",
    "cp.sha": "entries.jsonl 的 SHA-256",
    "h.figures": "重點數字",
    "fig.calls": "外撥電話",
    "fig.checked": "經客戶查證",
    "fig.verified": "其中已確認",
    "fig.failed": "查證失敗",
    "fig.reports": "詐騙通報",
    "fig.agents": "客服人員",
    "fig.anomalies": "異常",
    "h.anomalies": "異常",
    "no_anomalies": "未發現異常：沒有上班時間以外的電話，沒有明顯多於同事的客服人員，也沒有查證"
                    "失敗暴增。",
    "anomalies.intro": "以下每一項都是值得追問的理由，而非違規的證據。最嚴重的列在最前面。",
    "a.tampered.title": "儲存的電話與其來電確認碼不符",
    "a.tampered": "{when}，電話 {ticket} 未通過伺服器自身的檢查（{check}）。",
    "a.tampered.why": "公司的資料庫曾在系統之外被更改。請索取事件紀錄。",
    "a.lonely_reveal.title": "沒有通話卻揭示了來電碼或暗語",
    "a.lonely_reveal": "有 {count} 次在撥號系統從未回報接通的電話上，揭示了驗證 App 裡的來電碼或"
                       "來電暗語（第一次在 {first}）。依客服人員：{who}。",
    "a.lonely_reveal.why": "來電碼與來電暗語只應在真實通話中揭示。可能有人在蒐集它們，再轉交他人。",
    "a.reveal_refused.title": "沒有接通的電話卻要求揭示",
    "a.reveal_refused": "有 {count} 次，客服人員在沒有接通電話時要求揭示客戶的來電碼或來電暗語，"
                        "均遭拒絕。依客服人員：{who}。",
    "a.reveal_refused.why": "沒有通話卻索取客戶的秘密，可能是企圖蒐集。請詢問相關客服人員。",
    "a.reveal_capped.title": "揭示次數超過每小時上限",
    "a.reveal_capped": "有 {count} 次揭示因客服人員或客戶已達每小時上限而遭拒絕。"
                       "依客服人員：{who}。",
    "a.reveal_capped.why": "一小時內大量揭示並不尋常；可能有人在大量蒐集。",
    "a.burst.title": "查證失敗暴增：可能是一波詐騙電話",
    "a.burst": "{hour}：有 {count} 組輸入的來電確認碼對不上任何電話；其他時段平均每小時只有 "
               "{typical} 組（相差 {ratio} 倍）。",
    "a.burst.why": "許多人同時查證公司從未發出的確認碼，代表有歹徒冒用公司名義打電話，或有人在"
                   "猜測確認碼。請對照同幾天的詐騙通報。",
    "a.far_above.title": "客服人員 {agent} 的外撥電話遠多於同事",
    "a.far_above": "客服人員 {agent} 共發出 {count} 通，是其他客服人員中位數（{median}）的 "
                   "{ratio} 倍；其中 {after} 通在上班時間以外。",
    "a.far_above.why": "大量發出電話的帳號可能遭共用、盜用，或被濫用來替其他電話冠上公司名義。"
                       "請查明是誰使用、為何使用。",
    "a.after_hours.title": "上班時間以外的電話",
    "a.after_hours": "共有 {count} 通在 {hours}（{tz}）以外發出。依客服人員：{who}。",
    "a.after_hours.why": "客服中心不會在夜間致電客戶。請逐一與撥號系統的紀錄核對。",
    "a.breaker.title": "查證煞車啟動",
    "a.breaker": "{when}，一分鐘內有 {count} 次查證失敗，超過上限 {budget}；查證暫停了幾分鐘。",
    "a.breaker.why": "煞車防止確認碼被猜中；啟動期間，真正的客戶也無法查證來電。",
    "a.relayed.title": "確認碼在第二台裝置上輸入",
    "a.relayed": "有 {count} 次，查證中的確認碼又在另一台裝置上輸入；這些電話都已終止。",
    "a.relayed.why": "歹徒把真實通話的確認碼轉給受害者時，就會出現這種情形。每一通都已被攔下。",
    "a.unreadable.title": "無法讀取的紀錄",
    "a.unreadable": "entries.jsonl 中有 {count} 行無法讀取為事件，未計入數字。",
    "a.unreadable.why": "上方的驗證結果依行號列出。",
    "h.calls": "每日外撥電話",
    "calls.desc": "長條圖：每日發出的電話數，分為上班時間內與上班時間外。圖下的表格列出數據。",
    "calls.text": "客服人員以來電確認碼撥出的每一通電話，依發出日期計算；上班時間（{hours}）"
                  "以外的電話以橘色顯示。",
    "inside": "上班時間內",
    "outside": "上班時間外",
    "col.day": "日期",
    "col.calls": "電話",
    "h.verified": "查證後確認的比例",
    "verified.desc": "折線圖：每日經客戶查證的電話中，以正確確認詞完成確認的比例。",
    "verified.text": "客戶查證了來電確認碼的電話中，以正確確認詞完成確認的比例。比例下降，表示許多"
                     "客戶遇到號碼不符或確認詞錯誤。",
    "col.checked": "已查證",
    "col.verified": "已確認",
    "col.share": "確認比例",
    "h.failed": "每小時查證失敗次數",
    "failed.desc": "長條圖：每小時在來電查證頁輸入、卻對不上任何電話的確認碼數量。暴增的時段以"
                   "紅色標示。",
    "failed.text": "在來電查證頁輸入、卻對不上任何有效電話的來電確認碼，由日誌每分鐘計數一次（從不"
                   "保存輸入的內容）。每小時幾次是打錯字；突然暴增，代表許多人拿到了公司從未發出的"
                   "確認碼。",
    "col.hour": "時段",
    "col.failed": "查證失敗",
    "h.no": "回答「不是」與選錯確認詞",
    "no.desc": "長條圖：每日回答「不是」與選錯確認詞的次數。",
    "no.text": "「不是」：客戶手上電話的末四碼與撥出的號碼不符。選錯確認詞：客戶選的不是客服人員"
               "說的確認詞。兩者都會結束查證：這通電話無法確認。",
    "col.denied": "回答「不是」",
    "col.wrong": "選錯確認詞",
    "h.agents": "各客服人員的外撥電話",
    "agents.desc": "橫條圖：各客服人員發出的電話數，分為上班時間內與上班時間外。",
    "agents.text": "客服人員只以編號顯示。發出的電話超過其他人中位數 {ratio} 倍者會被標示。穩健 "
                   "z 分數（0.6745 × 與中位數的差 ÷ 中位數絕對離差）以共同的尺度呈現同一件事；"
                   "超過 3.5 即屬異常。",
    "col.agent": "客服人員",
    "col.ratio": "為中位數的倍數",
    "col.z": "穩健 z 分數",
    "h.reveals": "來電碼與來電暗語的揭示",
    "reveals.desc": "長條圖：每日揭示的次數，依種類區分。",
    "reveal.app_code": "驗證 App 來電碼",
    "reveal.phrase": "來電暗語",
    "reveals.text": "每次揭示都應屬於一通已接通的電話；沒有通話的揭示列在異常中。",
    "h.reports": "詐騙通報（依話術）",
    "reports.desc": "橫條圖：依來電者要求的事項統計詐騙通報。",
    "reports.text": "無法確認來電的民眾共提出 {n} 件通報，其中 {with_number} 件附上來電號碼（號碼"
                    "留在公司，不在匯出包中）。來電者要求的事項：",
    "reports.none": "此期間沒有詐騙通報。",
    "reports.per_day": "每日詐騙通報",
    "col.reports": "通報",
    "col.script": "來電者要求的事項",
    "script.refund": "退款或「重複扣款」",
    "script.verification_code": "驗證碼",
    "script.card_or_bank": "信用卡或銀行帳戶資料",
    "script.screen_sharing": "分享螢幕",
    "script.transfer_or_loan": "轉帳或貸款",
    "script.install_app": "安裝 App",
    "script.open_link": "點連結",
    "h.about": "關於本報告",
    "about.source": "本報告僅依匯出包（{entries} 筆紀錄）產生，未使用公司系統的任何存取權限。數字"
                    "由紀錄計算；上方的驗證結果說明這些紀錄是否為公司完整且經簽署的日誌。",
    "about.method": "時間以 {tz} 顯示；上班時間為 {hours}。門檻：發出的電話超過其他客服人員中位數 "
                    "{ratio} 倍，即視為遠多於同事；某小時的查證失敗達一般小時（中位數）的 {burst} "
                    "倍且至少 {floor} 次，即視為暴增。",
    "about.privacy": "匯出包不含個人資料：沒有電話號碼（簽署的電話內只有末四碼，本報告不顯示）、"
                     "沒有客戶姓名、沒有確認碼，也沒有客戶輸入的任何內容。本報告也不增加任何個人"
                     "資料：客服人員只以編號顯示。",
}

_ZH_HANS = {
    "title": "审计报告 — {issuer}",
    "period": "期间 {period}",
    "zone": "时间按 {tz} 显示，工作时间 {hours}",
    "generated": "生成于 {at}",
    "footer": "本报告由 callproof audit report 仅根据导出包生成。持有同一导出包的人，可用 "
              "callproof audit verify 再次验证，并会得到相同的数字。",
    "show_numbers": "显示数据",
    "h.verdict": "验证结果",
    "pass": "导出包验证通过",
    "pass.text": "全部 {entries} 条记录都在日志已签名的检查点内：没有记录被删除、添加、修改或调换"
                 "顺序，{tickets} 通外呼电话均由公司的密钥签名。",
    "fail": "导出包验证未通过：{n} 项错误",
    "fail.text": "以下数字按导出包现有记录计算，在这些错误查明之前不可采信。每项错误都标明 "
                 "entries.jsonl 的行号。",
    "fail.more": "……另有 {n} 项。",
    "cp.log": "日志",
    "cp.size": "已签名记录数（树大小）",
    "cp.root": "根哈希值",
    "cp.key": "日志密钥",
    "cp.pinned": "由审计人员指定（--log-key）",
    "cp.unpinned": "取自导出包本身：只能证明导出包自身一致。请用 --log-key 指定公司公布的密钥。",
    "cp.sha": "entries.jsonl 的 SHA-256",
    "h.figures": "关键数字",
    "fig.calls": "外呼电话",
    "fig.checked": "经客户查证",
    "fig.verified": "其中已确认",
    "fig.failed": "查证失败",
    "fig.reports": "诈骗举报",
    "fig.agents": "客服人员",
    "fig.anomalies": "异常",
    "h.anomalies": "异常",
    "no_anomalies": "未发现异常：没有工作时间以外的电话，没有明显多于同事的客服人员，也没有查证"
                    "失败激增。",
    "anomalies.intro": "以下每一项都是值得追问的理由，而不是违规的证据。最严重的排在最前面。",
    "a.tampered.title": "存储的电话与其来电确认码不符",
    "a.tampered": "{when}，电话 {ticket} 未通过服务器自身的检查（{check}）。",
    "a.tampered.why": "公司的数据库曾在系统之外被修改。请索取事件记录。",
    "a.lonely_reveal.title": "没有通话却揭示了来电码或暗语",
    "a.lonely_reveal": "有 {count} 次在拨号系统从未报告接通的电话上，揭示了验证器 App 里的来电码"
                       "或来电暗语（第一次在 {first}）。按客服人员：{who}。",
    "a.lonely_reveal.why": "来电码和来电暗语只应在真实通话中揭示。可能有人在收集它们，再转交他人。",
    "a.reveal_refused.title": "没有接通的电话却要求揭示",
    "a.reveal_refused": "有 {count} 次，客服人员在没有接通电话时要求揭示客户的来电码或来电暗语，"
                        "均被拒绝。按客服人员：{who}。",
    "a.reveal_refused.why": "没有通话却索取客户的秘密，可能是企图收集。请询问相关客服人员。",
    "a.reveal_capped.title": "揭示次数超过每小时上限",
    "a.reveal_capped": "有 {count} 次揭示因客服人员或客户已达每小时上限而被拒绝。"
                       "按客服人员：{who}。",
    "a.reveal_capped.why": "一小时内大量揭示并不寻常；可能有人在大量收集。",
    "a.burst.title": "查证失败激增：可能是一波诈骗电话",
    "a.burst": "{hour}：有 {count} 个输入的来电确认码对不上任何电话；其他时段平均每小时只有 "
               "{typical} 个（相差 {ratio} 倍）。",
    "a.burst.why": "许多人同时查证公司从未发出的确认码，说明有骗子冒用公司名义打电话，或有人在"
                   "猜测确认码。请对照同几天的诈骗举报。",
    "a.far_above.title": "客服人员 {agent} 的外呼电话远多于同事",
    "a.far_above": "客服人员 {agent} 共发出 {count} 通，是其他客服人员中位数（{median}）的 "
                   "{ratio} 倍；其中 {after} 通在工作时间以外。",
    "a.far_above.why": "大量发出电话的账户可能被共用、盗用，或被滥用来给其他电话冠上公司名义。"
                       "请查明是谁使用、为何使用。",
    "a.after_hours.title": "工作时间以外的电话",
    "a.after_hours": "共有 {count} 通在 {hours}（{tz}）以外发出。按客服人员：{who}。",
    "a.after_hours.why": "客服中心不会在夜间给客户打电话。请逐一与拨号系统的记录核对。",
    "a.breaker.title": "查证限流启动",
    "a.breaker": "{when}，一分钟内有 {count} 次查证失败，超过上限 {budget}；查证暂停了几分钟。",
    "a.breaker.why": "限流防止确认码被猜中；启动期间，真正的客户也无法查证来电。",
    "a.relayed.title": "确认码在第二台设备上输入",
    "a.relayed": "有 {count} 次，正在查证的确认码又在另一台设备上输入；这些电话都已终止。",
    "a.relayed.why": "骗子把真实通话的确认码转给受害人时，就会出现这种情况。每一通都已被拦下。",
    "a.unreadable.title": "无法读取的记录",
    "a.unreadable": "entries.jsonl 中有 {count} 行无法读取为事件，未计入数字。",
    "a.unreadable.why": "上方的验证结果按行号列出。",
    "h.calls": "每日外呼电话",
    "calls.desc": "柱状图：每日发出的电话数，分为工作时间内和工作时间外。图下的表格列出数据。",
    "calls.text": "客服人员使用来电确认码拨出的每一通电话，按发出日期统计；工作时间（{hours}）"
                  "以外的电话用橙色显示。",
    "inside": "工作时间内",
    "outside": "工作时间外",
    "col.day": "日期",
    "col.calls": "电话",
    "h.verified": "查证后确认的比例",
    "verified.desc": "折线图：每日经客户查证的电话中，以正确确认词完成确认的比例。",
    "verified.text": "客户查证了来电确认码的电话中，以正确确认词完成确认的比例。比例下降，说明许多"
                     "客户遇到号码不符或确认词错误。",
    "col.checked": "已查证",
    "col.verified": "已确认",
    "col.share": "确认比例",
    "h.failed": "每小时查证失败次数",
    "failed.desc": "柱状图：每小时在来电查证页输入、却对不上任何电话的确认码数量。激增的时段用"
                   "红色标出。",
    "failed.text": "在来电查证页输入、却对不上任何有效电话的来电确认码，由日志每分钟计数一次（从不"
                   "保存输入的内容）。每小时几次是输错；突然激增，说明许多人拿到了公司从未发出的"
                   "确认码。",
    "col.hour": "时段",
    "col.failed": "查证失败",
    "h.no": "回答“不是”和选错确认词",
    "no.desc": "柱状图：每日回答“不是”和选错确认词的次数。",
    "no.text": "“不是”：客户手中电话的尾号与外呼号码不符。选错确认词：客户选的不是客服人员说的"
               "确认词。两者都会结束查证：这通电话无法确认。",
    "col.denied": "回答“不是”",
    "col.wrong": "选错确认词",
    "h.agents": "各客服人员的外呼电话",
    "agents.desc": "条形图：各客服人员发出的电话数，分为工作时间内和工作时间外。",
    "agents.text": "客服人员只以工号显示。发出的电话超过其他人中位数 {ratio} 倍的会被标出。稳健 "
                   "z 分数（0.6745 × 与中位数之差 ÷ 中位数绝对偏差）用统一的尺度表示同一件事；"
                   "超过 3.5 即属异常。",
    "col.agent": "客服人员",
    "col.ratio": "为中位数的倍数",
    "col.z": "稳健 z 分数",
    "h.reveals": "来电码和来电暗语的揭示",
    "reveals.desc": "柱状图：每日揭示的次数，按种类区分。",
    "reveal.app_code": "验证器 App 来电码",
    "reveal.phrase": "来电暗语",
    "reveals.text": "每次揭示都应属于一通已接通的电话；没有通话的揭示列在异常中。",
    "h.reports": "诈骗举报（按话术）",
    "reports.desc": "条形图：按来电者的要求统计诈骗举报。",
    "reports.text": "无法确认来电的人共提交 {n} 条举报，其中 {with_number} 条附有来电号码（号码留在"
                    "公司，不在导出包中）。来电者的要求：",
    "reports.none": "此期间没有诈骗举报。",
    "reports.per_day": "每日诈骗举报",
    "col.reports": "举报",
    "col.script": "来电者的要求",
    "script.refund": "退款或“重复扣款”",
    "script.verification_code": "验证码",
    "script.card_or_bank": "银行卡或账户信息",
    "script.screen_sharing": "共享屏幕",
    "script.transfer_or_loan": "转账或贷款",
    "script.install_app": "安装 App",
    "script.open_link": "点链接",
    "h.about": "关于本报告",
    "about.source": "本报告仅根据导出包（{entries} 条记录）生成，未使用对公司系统的任何访问权限。"
                    "数字由记录统计；上方的验证结果说明这些记录是否为公司完整且经签名的日志。",
    "about.method": "时间按 {tz} 显示；工作时间为 {hours}。阈值：发出的电话超过其他客服人员中位数 "
                    "{ratio} 倍，即视为远多于同事；某小时的查证失败达到平常小时（中位数）的 "
                    "{burst} 倍且至少 {floor} 次，即视为激增。",
    "about.privacy": "导出包不含个人信息：没有电话号码（签名的电话内只有尾号四位，本报告不显示）、"
                     "没有客户姓名、没有确认码，也没有客户输入的任何内容。本报告也不增加任何个人"
                     "信息：客服人员只以工号显示。",
}

STRINGS: dict[str, dict[str, str]] = {"en": _EN, "zh-Hant": _ZH_HANT, "zh-Hans": _ZH_HANS}
LANGS = tuple(STRINGS)
