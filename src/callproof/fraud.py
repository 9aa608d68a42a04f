"""The fraud desk's read-only views: alerts, failed lookups per hour, scam reports, police facts.

Everything here is read from what the library already records — the event record (alerts), the
per-minute failed-lookup counters and the scam reports — and nothing identifies a customer: an
alert names a ticket, its agent and its reason; a report is shown as the number that called (the
scammer's), the scripts ticked and the time. A report's free text is never read here: the page
asks people not to type personal data into it, and some will anyway (spec/fraud-desk.md).

    >>> desk = FraudDesk(dep)
    >>> [a.kind for a in desk.alerts(limit=3)]
    ['number_denied', 'budget_tripped', 'number_denied']
    >>> desk.police_csv(days=7)          # for the police: one row per report, no free text
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from callproof.deployment import Deployment
from callproof.errors import InputError, NotFound
from callproof.protocol import events
from callproof.protocol.canonical import parse_json_strict
from callproof.protocol.clock import from_epoch, iso, to_epoch
from callproof.protocol.events import REPORT_SCRIPTS as SCRIPTS
from callproof.store import schema
from callproof.store.integrator import integrate_all

ALERT_KINDS: tuple[str, ...] = ("number_denied", "word_wrong", "claimed_elsewhere",
                                "budget_tripped", "reveal_unconnected", "reveal_capped",
                                "tampered", "route_changed")
#: The event type behind each alert kind.
ALERT_EVENTS: Mapping[str, str] = {
    events.NUMBER_DENIED: "number_denied",
    events.WORD_WRONG: "word_wrong",
    events.CLAIMED_ELSEWHERE: "claimed_elsewhere",
    events.BUDGET_TRIPPED: "budget_tripped",
    events.REVEAL_UNCONNECTED: "reveal_unconnected",
    events.REVEAL_CAPPED: "reveal_capped",
    events.TAMPERED: "tampered",
    # The voice line: an agent's transfer target or queue changed (a leaked key could send
    # verified customers elsewhere; the desk sees every change and where it now goes).
    events.AGENT_ROUTE_SET: "route_changed",
}
#: Alerts about the company's own configuration, not about callers: not in the police facts.
_NOT_FOR_POLICE = frozenset({"route_changed"})
_POLICE_EVENTS = tuple(t for t, kind in ALERT_EVENTS.items() if kind not in _NOT_FOR_POLICE)
#: The days the desk offers for reports.
WINDOWS = (1, 7, 30)
#: The longest window police facts and the hourly chart may cover.
MAX_POLICE_DAYS = 366
MAX_HOURS = 24 * 31
MAX_ALERTS = 1000

# What an alert may carry from its event's data, per kind. Anything else an event holds (now or
# in a later version) stays out, so a new event member can never leak onto the desk or the wire.
_DETAILS: Mapping[str, tuple[str, ...]] = {
    "budget_tripped": ("minute", "count", "budget", "open_until"),
    "tampered": ("check",),
    "reveal_unconnected": ("allowed", "api_key"),
    "reveal_capped": ("cap", "api_key"),
    "route_changed": ("transfer_target", "queue"),
}
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
POLICE_CSV_HEADER = ("reported_at_utc", "caller_number", "scripts")
#: A ticket's story on the desk: at most this many of its events (a ticket has about ten).
MAX_STORY = 200
# What a story step may carry from its event's data: the cause of a failure, the check of a
# tampered record, the kind of a reveal, the API key that asked. Never a ticket, a code or more.
_STORY_DETAILS = ("cause", "check", "allowed", "cap", "api_key")


@dataclass(frozen=True)
class Alert:
    """One alert: an event of one of :data:`ALERT_KINDS`, with its ticket's agent and reason."""

    idx: int
    kind: str
    at: datetime
    ticket_id: str | None
    agent_id: str | None
    reason: str | None
    details: Mapping[str, int | str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"idx": self.idx, "kind": self.kind, "at": iso(self.at),
                "ticket_id": self.ticket_id, "agent_id": self.agent_id, "reason": self.reason,
                "details": dict(self.details)}


@dataclass(frozen=True)
class AlertWork:
    """What the desk did with one alert, read from the event record: who acknowledged it, and
    to whom it is assigned (the latest assignment), with who did it and when."""

    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    assignee: str | None = None
    assigned_by: str | None = None
    assigned_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"acknowledged_by": self.acknowledged_by,
                "acknowledged_at": iso(self.acknowledged_at) if self.acknowledged_at else None,
                "assignee": self.assignee, "assigned_by": self.assigned_by,
                "assigned_at": iso(self.assigned_at) if self.assigned_at else None}


@dataclass(frozen=True)
class StoryStep:
    """One event of a ticket's story, in the record's order: its type, time and the few data
    members the desk may show (:data:`_STORY_DETAILS`)."""

    idx: int
    type: str
    at: datetime
    details: Mapping[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportText:
    """One scam report as its own page shows it: the free text while it is kept."""

    report_id: str
    at: datetime
    caller_number: str | None
    scripts: tuple[str, ...]
    text: str | None
    #: The text was forgotten (or will be) this many days after the report.
    text_days: int

    @property
    def text_removed(self) -> bool:
        return self.text is None


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    count: int


@dataclass(frozen=True)
class NumberSummary:
    """The reports naming one caller number (the scammer's, E.164)."""

    number: str
    reports: int
    first_at: datetime
    last_at: datetime
    scripts: Mapping[str, int]


@dataclass(frozen=True)
class ScriptSummary:
    script: str
    reports: int


@dataclass(frozen=True)
class ReportRow:
    """One report as the police facts list it: no free text, nothing of the reporter."""

    at: datetime
    caller_number: str | None
    scripts: tuple[str, ...]


@dataclass(frozen=True)
class ReportSummary:
    days: int
    since: datetime
    until: datetime
    total: int
    without_number: int
    by_number: list[NumberSummary]
    by_script: list[ScriptSummary]


@dataclass(frozen=True)
class PoliceFacts:
    days: int
    since: datetime
    until: datetime
    generated_at: datetime
    issuer: str
    company: str
    reports: list[ReportRow]
    summary: ReportSummary
    alerts_by_kind: Mapping[str, int]
    failed_lookups: int


def csv_cell(value: str) -> str:
    """``value`` made safe for a spreadsheet: a leading ``'`` before = + - @ tab or CR."""
    return "'" + value if value.startswith(_FORMULA_START) else value


class FraudDesk:
    """What the fraud team sees, for one issuer. Read-only: nothing here writes."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    # --- alerts ---------------------------------------------------------------------------

    def alerts(self, *, after: int | None = None, limit: int = 100,
               now: datetime | None = None) -> list[Alert]:
        """The newest alerts first (at most ``limit``, 1–1000); ``after`` keeps only those with
        a larger index (what a live page polls for). Alerts stamped after ``now`` are left out.

        Alerts are read from the log in its order (their index is their leaf's), so what is
        queued is integrated first — without waiting when the worker is integrating already."""
        if not 1 <= limit <= MAX_ALERTS:
            raise InputError(f"limit must be 1–{MAX_ALERTS}", reason="bad_limit")
        at = to_epoch(self.dep.now(now))
        integrate_all(self.dep.store)
        with self.dep.store.read() as conn:
            return alerts_between(conn, self.dep.issuer_id, after=after, until=at, limit=limit)

    def alert(self, idx: int) -> Alert | None:
        """The alert with index ``idx``, or None when no alert has it."""
        integrate_all(self.dep.store)
        with self.dep.store.read() as conn:
            found = alerts_between(conn, self.dep.issuer_id, after=idx - 1, until=None,
                                   limit=1, oldest_first=True)
        return found[0] if found and found[0].idx == idx else None

    def work(self, idxs: list[int]) -> dict[int, AlertWork]:
        """What the desk did with each of these alerts (acknowledged, assigned): read from the
        ``desk.alert_*`` events, which follow their alert in the record."""
        if not idxs:
            return {}
        e = schema.events
        wanted = set(idxs)
        found: dict[int, dict[str, Any]] = {}
        with self.dep.store.read() as conn:
            rows = conn.execute(select(e.c.type, e.c.at, e.c.body).where(
                e.c.issuer_id == self.dep.issuer_id, e.c.idx > min(wanted),
                e.c.type.in_((events.ALERT_ACKNOWLEDGED, events.ALERT_ASSIGNED)))
                .order_by(e.c.idx))
            for row in rows:
                data = parse_json_strict(bytes(row.body)).get("data", {})
                alert = data.get("alert")
                if not isinstance(alert, int) or alert not in wanted:
                    continue
                work = found.setdefault(alert, {})
                at = from_epoch(int(row.at))
                if row.type == events.ALERT_ACKNOWLEDGED and "acknowledged_by" not in work:
                    work.update(acknowledged_by=data.get("user_id"), acknowledged_at=at)
                elif row.type == events.ALERT_ASSIGNED:
                    work.update(assignee=data.get("assignee"), assigned_by=data.get("user_id"),
                                assigned_at=at)
        return {idx: AlertWork(**w) for idx, w in found.items()}

    def acknowledge(self, idx: int, user_id: str, *, now: datetime | None = None) -> bool:
        """Record that desk user ``user_id`` acknowledged alert ``idx`` (a
        ``desk.alert_acknowledged`` event). False, and nothing recorded, when it was already
        acknowledged. Raises :class:`NotFound` when there is no such alert."""
        if self.alert(idx) is None:
            raise NotFound(f"no alert {idx}")
        if self.work([idx]).get(idx, AlertWork()).acknowledged_by is not None:
            return False
        with self.dep.store.write() as conn:
            self.dep.record(conn, events.ALERT_ACKNOWLEDGED, self.dep.now(now), alert=idx,
                            user_id=user_id)
        return True

    def assign(self, idx: int, user_id: str, assignee: str, *,
               now: datetime | None = None) -> None:
        """Record that desk user ``user_id`` assigned alert ``idx`` to desk user ``assignee``
        (a ``desk.alert_assigned`` event; the latest assignment counts). Raises
        :class:`NotFound` for an unknown alert or an assignee who is not an enabled desk
        user."""
        if self.alert(idx) is None:
            raise NotFound(f"no alert {idx}")
        t = schema.desk_users
        with self.dep.store.write() as conn:
            enabled = conn.execute(select(t.c.enabled).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.user_id == assignee)).scalar()
            if not enabled:
                raise NotFound(f"no enabled desk user {assignee!r}")
            self.dep.record(conn, events.ALERT_ASSIGNED, self.dep.now(now), alert=idx,
                            user_id=user_id, assignee=assignee)

    def story(self, ticket_id: str) -> list[StoryStep]:
        """A ticket's events in the record's order (at most :data:`MAX_STORY`)."""
        e = schema.events
        integrate_all(self.dep.store)
        with self.dep.store.read() as conn:
            rows = conn.execute(select(e.c.idx, e.c.type, e.c.at, e.c.body).where(
                e.c.issuer_id == self.dep.issuer_id, e.c.ticket_id == ticket_id)
                .order_by(e.c.idx).limit(MAX_STORY)).all()
        steps = []
        for row in rows:
            data = parse_json_strict(bytes(row.body)).get("data", {})
            details = {k: v for k in _STORY_DETAILS
                       if isinstance(v := data.get(k), int | str)}
            steps.append(StoryStep(int(row.idx), str(row.type), from_epoch(int(row.at)),
                                   details))
        return steps

    # --- failed lookups -------------------------------------------------------------------

    def failed_lookups_per_hour(self, *, hours: int = 24,
                                now: datetime | None = None) -> list[HourCount]:
        """Failed lookups in each of the last ``hours`` hours (UTC), oldest first, zeros too;
        the current (unfinished) hour is last. The counters are deployment-wide."""
        if not 1 <= hours <= MAX_HOURS:
            raise InputError(f"hours must be 1–{MAX_HOURS}", reason="bad_window")
        at = to_epoch(self.dep.now(now))
        current = at - at % 3600
        start = current - (hours - 1) * 3600
        t = schema.failed_lookups
        hour = (t.c.minute - t.c.minute % 3600).label("hour")
        with self.dep.store.read() as conn:
            rows = conn.execute(select(hour, func.sum(t.c.count)).where(
                t.c.minute >= start, t.c.minute <= at).group_by(hour)).all()
        counts = {int(h): int(n) for h, n in rows}
        return [HourCount(from_epoch(h), counts.get(h, 0))
                for h in range(start, current + 1, 3600)]

    # --- reports --------------------------------------------------------------------------

    def reports(self, *, days: int, now: datetime | None = None) -> ReportSummary:
        """Scam reports of the last ``days`` days (1, 7 or 30), by number and by script."""
        if days not in WINDOWS:
            raise InputError(f"the desk shows the last {', '.join(map(str, WINDOWS))} days",
                             reason="bad_window")
        until = self.dep.now(now)
        with self.dep.store.read() as conn:
            rows = self._report_rows(conn, until - timedelta(days=days), until)
        return _summary(days, until - timedelta(days=days), until, rows)

    def police_facts(self, *, days: int, now: datetime | None = None) -> PoliceFacts:
        """What a police report needs for the last ``days`` days (1–366): every report (time,
        number, scripts), the same by number and by script, alerts by kind, failed lookups."""
        if not isinstance(days, int) or not 1 <= days <= MAX_POLICE_DAYS:
            raise InputError(f"days must be 1–{MAX_POLICE_DAYS}", reason="bad_window")
        until = self.dep.now(now)
        since = until - timedelta(days=days)
        lo, hi = to_epoch(since), to_epoch(until)
        e, f = schema.events, schema.failed_lookups
        integrate_all(self.dep.store)
        with self.dep.store.read() as conn:
            rows = self._report_rows(conn, since, until)
            by_type = {str(type_): int(n) for type_, n in conn.execute(
                select(e.c.type, func.count()).where(
                    e.c.issuer_id == self.dep.issuer_id, e.c.type.in_(_POLICE_EVENTS),
                    e.c.at >= lo, e.c.at <= hi).group_by(e.c.type))}
            failed = conn.execute(select(func.coalesce(func.sum(f.c.count), 0)).where(
                f.c.minute >= lo - lo % 60, f.c.minute <= hi)).scalar_one()
        alerts_by_kind = {kind: 0 for kind in ALERT_KINDS if kind not in _NOT_FOR_POLICE}
        for type_, n in by_type.items():
            alerts_by_kind[ALERT_EVENTS[type_]] = int(n)
        return PoliceFacts(days=days, since=since, until=until, generated_at=until,
                           issuer=self.dep.issuer_id, company=self.dep.config.company.name,
                           reports=rows, summary=_summary(days, since, until, rows),
                           alerts_by_kind=alerts_by_kind, failed_lookups=int(failed))

    def police_csv(self, *, days: int, now: datetime | None = None) -> str:
        """The police facts' reports as CSV: a header row, then one row per report, oldest
        first (time in UTC, the caller's number, the scripts separated by ';'). No free text.
        Every cell that a spreadsheet would run as a formula starts with ``'``."""
        facts = self.police_facts(days=days, now=now)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(POLICE_CSV_HEADER)
        for r in facts.reports:
            writer.writerow([csv_cell(iso(r.at)), csv_cell(r.caller_number or ""),
                             csv_cell(";".join(r.scripts))])
        return out.getvalue()

    def recent_reports(self, *, days: int, now: datetime | None = None,
                       limit: int = 200) -> list[tuple[str, ReportRow, bool]]:
        """The window's reports, newest first: (report id, the report, whether it has free
        text still kept). For the desk's list, which links each report's page."""
        if days not in WINDOWS:
            raise InputError("the desk shows the last 1, 7 or 30 days", reason="bad_window")
        until = self.dep.now(now)
        t = schema.scam_reports
        with self.dep.store.read() as conn:
            rows = conn.execute(select(t.c.report_id, t.c.at, t.c.caller_number, t.c.scripts,
                                       t.c.text.is_not(None).label("has_text")).where(
                t.c.issuer_id == self.dep.issuer_id,
                t.c.at >= to_epoch(until - timedelta(days=days)), t.c.at <= to_epoch(until))
                .order_by(t.c.at.desc(), t.c.report_id).limit(limit)).all()
        return [(r.report_id, ReportRow(from_epoch(r.at), r.caller_number,
                                        _in_form_order(r.scripts)), bool(r.has_text))
                for r in rows]

    def report(self, report_id: str) -> ReportText | None:
        """One report with its free text — for the desk user who opens its page; never for
        the police facts or their CSV. None when there is no such report."""
        if not (0 < len(report_id) <= 64 and report_id.isascii()):
            return None
        t = schema.scam_reports
        with self.dep.store.read() as conn:
            row = conn.execute(select(t.c.report_id, t.c.at, t.c.caller_number, t.c.scripts,
                                      t.c.text).where(t.c.issuer_id == self.dep.issuer_id,
                                                      t.c.report_id == report_id)).first()
        if row is None:
            return None
        return ReportText(row.report_id, from_epoch(row.at), row.caller_number,
                          _in_form_order(row.scripts), row.text,
                          self.dep.config.limits.report_text_days)

    def _report_rows(self, conn: Connection, since: datetime, until: datetime
                     ) -> list[ReportRow]:
        t = schema.scam_reports
        # Only these three columns: the report's free text is never read by the desk.
        rows = conn.execute(select(t.c.at, t.c.caller_number, t.c.scripts).where(
            t.c.issuer_id == self.dep.issuer_id, t.c.at >= to_epoch(since),
            t.c.at <= to_epoch(until)).order_by(t.c.at, t.c.report_id)).all()
        return [ReportRow(from_epoch(r.at), r.caller_number, _in_form_order(r.scripts))
                for r in rows]


def alerts_between(conn: Connection, issuer: str, *, after: int | None, until: int | None,
                   limit: int, oldest_first: bool = False) -> list[Alert]:
    """The issuer's alerts with an index above ``after`` (newest first unless ``oldest_first``),
    joined to their tickets for the agent and the reason."""
    e, t = schema.events, schema.tickets
    query = (select(e.c.idx, e.c.type, e.c.at, e.c.ticket_id, e.c.body, t.c.agent_id,
                    t.c.reason)
             .select_from(e.outerjoin(t, t.c.ticket_id == e.c.ticket_id))
             .where(e.c.issuer_id == issuer, e.c.type.in_(tuple(ALERT_EVENTS))))
    if after is not None:
        query = query.where(e.c.idx > after)
    if until is not None:
        query = query.where(e.c.at <= until)
    query = query.order_by(e.c.idx if oldest_first else e.c.idx.desc()).limit(limit)
    return [_alert(r) for r in conn.execute(query)]


def _alert(row: Any) -> Alert:
    kind = ALERT_EVENTS[row.type]
    data = parse_json_strict(bytes(row.body)).get("data", {})
    details: dict[str, int | str] = {}
    for name in _DETAILS.get(kind, ()):
        value = data.get(name)
        if isinstance(value, int | str):  # a bool is an int: `allowed` stays true/false
            details[name] = value
    agent = row.agent_id if row.agent_id is not None else data.get("agent_id")
    return Alert(idx=int(row.idx), kind=kind, at=from_epoch(row.at), ticket_id=row.ticket_id,
                 agent_id=agent if isinstance(agent, str) else None, reason=row.reason,
                 details=details)


def _in_form_order(scripts: str) -> tuple[str, ...]:
    """A stored script list in the report form's order (anything unknown last)."""
    return tuple(sorted((s for s in scripts.split(",") if s), key=_form_order))


def _form_order(script: str) -> tuple[int, str]:
    return (SCRIPTS.index(script) if script in SCRIPTS else len(SCRIPTS), script)


def _summary(days: int, since: datetime, until: datetime, rows: list[ReportRow]
             ) -> ReportSummary:
    numbers: dict[str, list[ReportRow]] = {}
    scripts: Counter[str] = Counter()
    for r in rows:
        scripts.update(r.scripts)
        if r.caller_number:
            numbers.setdefault(r.caller_number, []).append(r)
    by_number = [
        NumberSummary(number=n, reports=len(rs), first_at=rs[0].at, last_at=rs[-1].at,
                      scripts=dict(sorted(Counter(s for r in rs for s in r.scripts).items(),
                                          key=lambda kv: (-kv[1], _form_order(kv[0])))))
        for n, rs in numbers.items()]
    by_number.sort(key=lambda s: (-s.reports, -s.last_at.timestamp(), s.number))
    listed = sorted(set(SCRIPTS) | set(scripts), key=_form_order)
    by_script = sorted((ScriptSummary(s, scripts.get(s, 0)) for s in listed),
                       key=lambda s: -s.reports)  # stable: ties keep the form's order
    return ReportSummary(days=days, since=since, until=until, total=len(rows),
                         without_number=sum(1 for r in rows if not r.caller_number),
                         by_number=by_number, by_script=by_script)
