"""Scam reports from customers who could not confirm a call.

Nothing identifies the reporter: the report holds what the caller asked for (a fixed list of
scripts), the number that called (the caller's, not the customer's; optional, normalised) and an
optional short text the page warns not to fill with personal data.

    >>> report_id = Reports(dep).file(scripts=["refund", "card"], caller_number="+886 2 2345 6789")
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

import phonenumbers
from sqlalchemy import Connection, delete, insert, select, update

from callproof.deployment import Deployment
from callproof.errors import InputError
from callproof.protocol import events
from callproof.protocol.clock import to_epoch
from callproof.protocol.events import REPORT_SCRIPTS
from callproof.protocol.networks import client_keys
from callproof.store import schema

MAX_TEXT = 500


def normalise_caller_number(text: str, country: str) -> str:
    """The caller's number in E.164, read as a local number of ``country`` when not +-prefixed.

    Raises :class:`InputError` when it is not a possible phone number.
    """
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as e:
        raise InputError("not a phone number", reason="bad_phone") from e
    if not phonenumbers.is_possible_number(number):
        raise InputError("not a phone number", reason="bad_phone")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


class Reports:
    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    def file(self, *, scripts: Iterable[str], caller_number: str | None = None,
             text: str | None = None, client_address: str | None = None,
             now: datetime | None = None) -> str:
        """Store a report and log that one was filed (the event holds no number or text).

        With ``client_address`` (the web form passes it), at most ``reports_per_address_hour``
        reports a client address and ``reports_per_network_hour`` a network may file in an
        epoch hour; past that, :class:`InputError` (``too_many_reports``) and nothing is kept —
        so one sender cannot fill the desk's counts and the police facts."""
        at = self.dep.now(now)
        chosen = sorted(set(scripts))
        unknown = [s for s in chosen if s not in REPORT_SCRIPTS]
        if unknown:
            raise InputError(f"unknown script(s): {', '.join(unknown)}", reason="bad_script")
        number = normalise_caller_number(caller_number, self.dep.config.company.country) \
            if caller_number and caller_number.strip() else None
        body = (text or "").strip()
        if len(body) > MAX_TEXT:
            raise InputError(f"at most {MAX_TEXT} characters", reason="too_long")
        report_id = "r_" + secrets.token_urlsafe(12)
        with self.dep.store.write() as conn:
            if client_address:
                self._count(conn, client_address, to_epoch(at))
            conn.execute(insert(schema.scam_reports).values(
                report_id=report_id, issuer_id=self.dep.issuer_id, at=to_epoch(at),
                caller_number=number, scripts=",".join(chosen), text=body or None))
            self.dep.record(conn, events.REPORT_FILED, at, report_id=report_id, scripts=chosen,
                            with_number=number is not None)
        return report_id

    def _count(self, conn: Connection, client_address: str, now: int) -> None:
        """Count this report for the address and its network; refuse it past their limits."""
        limits, hour = self.dep.config.limits, now - now % 3600
        address, network = client_keys(client_address)
        c = schema.report_counts
        for key, limit in ((address, limits.reports_per_address_hour),
                           (network, limits.reports_per_network_hour)):
            if key is None:
                continue
            hashed = self.dep.hash_keys.client_hash("report:" + key)
            filed = conn.execute(select(c.c.count).where(c.c.key_hash == hashed,
                                                         c.c.hour == hour)
                                 .with_for_update()).scalar()
            if filed is not None and filed >= limit:
                raise InputError("too many reports from this connection in the last hour",
                                 reason="too_many_reports")
            if filed is not None or not self.dep.store.insert_if_absent(
                    conn, c, {"key_hash": hashed, "hour": hour, "count": 1}):
                conn.execute(update(c).where(c.c.key_hash == hashed, c.c.hour == hour)
                             .values(count=c.c.count + 1))
        conn.execute(delete(c).where(c.c.hour < hour - 3600))

    def purge_texts(self, *, now: datetime | None = None) -> int:
        """Forget the free text of reports older than ``limits.report_text_days`` (a customer may
        have written something that identifies them); their number and scripts stay. Returns how
        many texts were forgotten. Housekeeping runs this."""
        at = to_epoch(self.dep.now(now))
        before = at - self.dep.config.limits.report_text_days * 86_400
        t = schema.scam_reports
        with self.dep.store.write() as conn:
            return int(conn.execute(update(t).where(
                t.c.issuer_id == self.dep.issuer_id, t.c.at < before, t.c.text.is_not(None))
                .values(text=None)).rowcount)
