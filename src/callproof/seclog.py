"""The security log: one structured line per security event, on stderr by default.

``callproof serve`` (through the app factory) and ``callproof worker`` call :func:`configure`,
which sends the ``callproof`` loggers' INFO and above to stderr, one JSON object a line
(``CALLPROOF_LOG_FORMAT=text`` for ``key=value`` lines instead)::

    {"ts": "2026-12-05T10:00:00Z", "level": "INFO", "logger": "callproof.security",
     "event": "sign_in.failed", "kind": "agent", "client": "h:Qm9…"}

:func:`event` writes the security events: sign-ins (``sign_in.ok``, ``sign_in.failed``,
``sign_in.refused``, ``sign_in.account_limited``), ``sign_out``, ``desk.export``,
``api_key.used`` / ``api_key.refused``, ``wave.started``, ``reveal``. Their fields are ids,
kinds and counts — never a secret, a code, a phone number, a password or what was typed as an
id, and a client address only as a keyed hash (:func:`client_field`). A field whose name says
it could hold one of those is refused (:class:`ValueError`), so a careless call fails in the
tests, not in the log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

__all__ = ["FORBIDDEN", "client_field", "configure", "event"]

log = logging.getLogger("callproof.security")

#: Field names an event may never carry (their values would be secret or personal).
FORBIDDEN = frozenset({"address", "ip", "remote_addr", "code", "password", "secret", "token",
                       "phone", "number", "key", "api_key", "passphrase", "text", "typed"})

_ATTR = "callproof_fields"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever ``sys.stderr`` is at the time of the record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, the event's fields or the message."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname, "logger": record.name}
        fields = getattr(record, _ATTR, None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the type only: no traceback text
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class KeyValues(logging.Formatter):
    """``ts=… level=… logger=… event=… kind=…`` (values with spaces quoted)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _ATTR, None)
        items: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname, "logger": record.name}
        items.update(fields if isinstance(fields, dict) else {"message": record.getMessage()})
        return " ".join(f"{k}={_kv(v)}" for k, v in items.items())


def _kv(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return json.dumps(text, ensure_ascii=False) if (not text or any(
        c.isspace() or c in "=\"" for c in text)) else text


def configure(fmt: str | None = None, level: int = logging.INFO) -> None:
    """Send the ``callproof`` loggers' records to stderr (once per process; later calls do
    nothing). ``fmt``: ``json`` (the default) or ``text`` (``key=value``); by default
    ``CALLPROOF_LOG_FORMAT``. Records still reach the root logger's handlers too."""
    root = logging.getLogger("callproof")
    if any(isinstance(h, _Stderr) for h in root.handlers):
        return
    chosen = (fmt or os.environ.get("CALLPROOF_LOG_FORMAT") or "json").strip().lower()
    handler = _Stderr()
    handler.setFormatter(KeyValues() if chosen == "text" else JsonLines())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def client_field(hash_keys: Any, address: str | None) -> str | None:
    """A client address as the log may name it: a keyed hash (``h:`` and 16 characters), the
    same for one address within a deployment, useless to anyone without its hash key."""
    if not address:
        return None
    return "h:" + str(hash_keys.client_hash("log:" + address))[:16]


def event(name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log the security event ``name`` with ``fields`` (ids, kinds, counts, keyed hashes)."""
    bad = FORBIDDEN.intersection(fields)
    if bad:
        raise ValueError(f"a security event may not carry {sorted(bad)}")
    for key, value in fields.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"security event field {key!r} must be a plain value")
    record = {"event": name, **{k: v for k, v in fields.items() if v is not None}}
    log.log(level, "%s", " ".join(f"{k}={_kv(v)}" for k, v in record.items()),
            extra={_ATTR: record})
