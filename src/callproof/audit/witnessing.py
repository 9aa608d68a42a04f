"""The log's side of witnessing: which witnesses it pushes checkpoints to, and the HTTP push.

The witnesses are listed in ``<data dir>/witnesses.toml`` (:func:`load_witnesses`);
:meth:`callproof.audit.log.AuditLog.push_to_witnesses` builds each add-checkpoint request with
:func:`~callproof.tlog.cosign.request_body`, sends it with :func:`post_checkpoint` and checks the
answer with :func:`~callproof.tlog.cosign.read_cosignature`. The witness itself, which someone
else runs, is :mod:`callproof.witness.server`.

    >>> [w.name for w in load_witnesses(Path("callproof-data") / WITNESSES_FILE)]
    ['w1', 'w2']
    >>> status, content_type, text = post_checkpoint(w.url, body, timeout=5.0)
    >>> refusal(status, content_type, text, old=0, size=12, origin="shop.example/callproof-log")
    Refusal(retry_from=7, error=None)

The answers follow the current C2SP tlog-witness text (spec/audit-log.md §7.2): 409 names the
witness's size (retried once from there), 422 is a proof that does not verify — a fork, the same
size with another root included — 403 the witness trusts no key that signed, 404 it does not
witness this log. A witness of the older text that answers a same-size fork with 409 naming the
size sent is understood too.
"""

from __future__ import annotations

import ipaddress
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callproof.errors import ConfigError, PushError
from callproof.tlog import note
from callproof.tlog.cosign import MAX_RESPONSE_BYTES, parse_size

__all__ = ["WITNESSES_FILE", "Refusal", "WitnessEndpoint", "load_witnesses", "post_checkpoint",
           "refusal"]

#: The log's list of witnesses, in its data dir.
WITNESSES_FILE = "witnesses.toml"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log pushes to: a label, its submission prefix and its cosigning key."""

    name: str
    url: str
    verifier: note.Verifier


def load_witnesses(path: Path) -> list[WitnessEndpoint]:
    """``<data dir>/witnesses.toml``: ``[[witness]]`` tables with ``url``, ``vkey`` and an
    optional ``name`` (a label; default: the key's name). No file: no witnesses."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    entries = raw.get("witness", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `witness` must be an array of tables ([[witness]])")
    found: list[WitnessEndpoint] = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: witness {i} must be a table")
        unknown = set(entry) - {"name", "url", "vkey"}
        if unknown:
            raise ConfigError(f"{path}: witness {i}: unknown setting(s) {sorted(unknown)}")
        url, vkey = entry.get("url"), entry.get("vkey")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{path}: witness {i} needs an http(s) `url`")
        if not isinstance(vkey, str):
            raise ConfigError(f"{path}: witness {i} needs a `vkey` string")
        try:
            verifier = note.Verifier.parse_of(vkey.strip(), note.ALG_COSIGNATURE_V1,
                                              "a cosignature (type 0x04) key")
        except note.NoteError as e:
            raise ConfigError(f"{path}: witness {i}: {e}") from e
        name = entry.get("name", verifier.name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: witness {i}: `name` must be a string")
        if any(w.verifier == verifier for w in found):
            raise ConfigError(f"{path}: witness {i}: the key of {name!r} is listed twice")
        found.append(WitnessEndpoint(name, url, verifier))
    return found


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_checkpoint(url: str, body: bytes, *, timeout: float = 5.0) -> tuple[int, str, str]:
    """POST ``body`` to ``<url>/add-checkpoint``; return (status, content type, text).

    Raises :class:`PushError` on a network error, a timeout or an over-long answer.
    """
    target = url.rstrip("/") + "/add-checkpoint"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https"):
        raise PushError(f"{url}: only http and https witnesses are supported")
    req = urllib.request.Request(target, data=body, method="POST",  # noqa: S310 - scheme checked
                                 headers={"Content-Type": "text/plain; charset=utf-8"})
    handlers: list[Any] = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) \
        else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as response:
            status, ctype, raw = response.status, response.headers.get("Content-Type", ""), \
                response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as e:
        status, ctype = e.code, e.headers.get("Content-Type", "") if e.headers else ""
        try:
            raw = e.read(MAX_RESPONSE_BYTES + 1)
        except OSError:
            raw = b""
        finally:
            e.close()
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise PushError(f"cannot reach {target}: {reason}") from e
    if len(raw) > MAX_RESPONSE_BYTES:
        raise PushError(f"{target} answered more than {MAX_RESPONSE_BYTES} bytes")
    return int(status), ctype, raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class Refusal:
    """What a non-200 answer to add-checkpoint means for the log: send again from
    ``retry_from`` (the witness's size, from a 409), or give up with ``error``."""

    retry_from: int | None = None
    error: str | None = None


def refusal(status: int, content_type: str, text: str, *, old: int, size: int,
            origin: str) -> Refusal:
    """Read a witness's refusal of the checkpoint of ``size`` sent with old size ``old``.

    A 409 naming another size than ``old`` is the witness's size: the caller retries once from
    it. Every other answer is an error that says, in the operator's words, what the witness
    found and what to do.
    """
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    said = f": {first}" if first else ""
    if status == 409:
        theirs = parse_size(content_type, text)
        if theirs is None:
            return Refusal(error=f"HTTP 409 without its size{said}")
        if theirs != old:
            return Refusal(retry_from=theirs)
        # tlog-witness v1.0.0 answered a same-size fork with 409 naming the size sent.
        return Refusal(error=f"it cosigned a different checkpoint of size {old} (HTTP 409): "
                             "the log showed it another history")
    if status == 422:
        if old == size:
            return Refusal(error=f"it cosigned a different checkpoint of size {old} (HTTP 422"
                                 f"{said}): the log showed it another history")
        return Refusal(error=f"the consistency proof from its checkpoint of {old} to {size} "
                             f"does not verify (HTTP 422{said}): the log showed it another "
                             "history, or the proof is wrong")
    if status == 403:
        return Refusal(error=f"it does not accept the log's signature (HTTP 403{said}): give its "
                             "operator this log's key (callproof audit vkey) for "
                             f"`callproof witness add-log`")
    if status == 404:
        return Refusal(error=f"it does not witness the log {origin} (HTTP 404): its operator "
                             "adds it with `callproof witness add-log` and this log's key")
    return Refusal(error=f"HTTP {status}{said}")
