"""Time as a parameter.

Every function that depends on the time takes ``now`` (an aware UTC ``datetime``). The services
hold a :class:`Clock` injected at the edges; tests pass a :class:`FixedClock` and move it.

    >>> clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> clock.advance(seconds=90); clock.now()
    datetime.datetime(2026, 1, 1, 0, 1, 30, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self._at = require_aware(at)

    def now(self) -> datetime:
        return self._at

    def advance(self, *, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self._at = require_aware(at)


def require_aware(at: datetime) -> datetime:
    """Return ``at`` in UTC; a naive datetime is a programming error, never guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime was passed where an aware UTC time is required")
    return at.astimezone(UTC)


def to_epoch(at: datetime) -> int:
    """Whole seconds since the epoch (JWT NumericDate), rounded down."""
    return int(require_aware(at).timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: ``2026-11-23T15:16:35Z``."""
    return require_aware(at).replace(microsecond=0).isoformat().replace("+00:00", "Z")
