"""The independent witness: a C2SP tlog-witness that cosigns a log's checkpoints.

A witness is run by someone other than the company — an auditor, a regulator. It knows the logs
it witnesses (origin → the log's verifier key), keeps the last checkpoint it cosigned for each,
and cosigns a new checkpoint (a C2SP tlog-cosignature v1.0.1, type 0x04) only when it is signed
by the log's key and a consistency proof shows it extends that last one. It never goes back, and
it persists its new state (temporary file, fsync, rename) before it answers. Because auditors
accept only checkpoints with enough cosignatures, the log cannot show two histories.

It follows the current tlog-witness text, after v1.0.0 (spec/audit-log.md §7.1 names the
version and its answers): a fork at the same size and a proof from size 0 that is not empty are
422, a bad signature by a trusted key is 403, and monitors read what it cosigned last at
``GET /<origin hash>/checkpoint`` (:meth:`Witness.latest`).

The witness's state dir (spec/audit-log.md §7)::

    witness.toml       name = "<the witness's key name>"
    witness.key        its Ed25519 key (PKCS#8 PEM, 0600, encrypted with CALLPROOF_KEY_PASSPHRASE)
    logs.toml          [[log]] vkey = "<a log's verifier key>" (origin = … when not the key name)
    state/<sha256>.json  per origin: the last checkpoint it cosigned, with that cosignature

Cosigning (``callproof witness serve`` puts :func:`callproof.witness.app.create_app` in front)::

    >>> witness = Witness.open("witness-data")
    >>> witness.add_checkpoint(b"old 0\\n\\n" + signed_checkpoint)   # the cosignature line(s)

This module knows nothing of the log's store: the log's side of witnessing (its list of
witnesses and the HTTP push) is :mod:`callproof.audit.witnessing`, and the wire format both
sides speak is :mod:`callproof.tlog.cosign`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callproof._files import create_key_file, read_private_key, write_atomic
from callproof.errors import ConfigError, WitnessError
from callproof.tlog import merkle, note
from callproof.tlog.cosign import parse_request

__all__ = [
    "Witness",
    "WitnessState",
    "add_log",
    "init_witness",
    "read_logs",
]

CONFIG_FILE = "witness.toml"
KEY_FILE = "witness.key"
LOGS_FILE = "logs.toml"
STATE_DIR = "state"
LOCK_FILE = ".lock"

# --- the witness --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessState:
    """The last checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root: bytes
    note: str  # the signed checkpoint as received, with this witness's cosignature appended
    cosigned_at: int

    def to_json(self) -> bytes:
        return (json.dumps({"origin": self.origin, "size": self.size,
                            "root": base64.b64encode(self.root).decode("ascii"),
                            "note": self.note, "cosigned_at": self.cosigned_at},
                           indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> WitnessState:
        data = json.loads(raw)
        state = cls(str(data["origin"]), int(data["size"]), base64.b64decode(data["root"]),
                    str(data["note"]), int(data["cosigned_at"]))
        if len(state.root) != merkle.HASH_SIZE or state.size < 0:
            raise ValueError("bad size or root")
        return state


class Witness:
    """A witness: its name and key, the logs it trusts, and its state dir.

    ``logs`` maps each origin to the log's Ed25519 verifier keys; when None they are read
    from ``<state dir>/logs.toml`` (and read again whenever that file changes). ``clock``
    gives the POSIX time put into cosignatures.
    """

    def __init__(self, name: str, private_key: Ed25519PrivateKey, state_dir: str | os.PathLike[str],
                 *, logs: Mapping[str, Sequence[note.Verifier]] | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.name = name
        self._key = private_key
        self.state_dir = Path(state_dir)
        self._verifier = note.Verifier.from_public_key(name, private_key.public_key(),
                                                       note.ALG_COSIGNATURE_V1)
        self._fixed_logs = None if logs is None else {o: tuple(v) for o, v in logs.items()}
        self._logs_stamp: tuple[int, int, int] | None = None
        self._file_logs: dict[str, tuple[note.Verifier, ...]] = {}
        self.clock = clock or (lambda: int(time.time()))
        self._lock = threading.Lock()
        (self.state_dir / STATE_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Witness({self.name!r}, {str(self.state_dir)!r})"

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], *, passphrase: bytes | None = None,
             clock: Callable[[], int] | None = None) -> Witness:
        """The witness of a state dir made by :func:`init_witness`. Raises ConfigError."""
        path = Path(state_dir)
        name = _read_name(path)
        key = path / KEY_FILE
        return cls(name, read_private_key(
            key, passphrase, what="the witness key",
            missing=f"the witness key {key} is missing: run `callproof witness init`"),
            path, clock=clock)

    def verifier(self) -> note.Verifier:
        """The witness's cosignature (type 0x04) verifier key."""
        return self._verifier

    def vkey(self) -> str:
        return self._verifier.to_vkey()

    def logs(self) -> dict[str, tuple[note.Verifier, ...]]:
        """Origin → the log keys this witness trusts."""
        if self._fixed_logs is not None:
            return self._fixed_logs
        path = self.state_dir / LOGS_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._logs_stamp:
            self._file_logs, self._logs_stamp = read_logs(path), stamp
        return self._file_logs

    # --- state ------------------------------------------------------------------------------

    def _state_file(self, origin: str) -> Path:
        digest = hashlib.sha256(origin.encode("utf-8")).hexdigest()
        return self.state_dir / STATE_DIR / f"{digest}.json"

    def state(self, origin: str) -> WitnessState | None:
        """The last checkpoint cosigned for ``origin``, or None."""
        path = self._state_file(origin)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = WitnessState.from_json(raw)
        except (ValueError, KeyError, TypeError) as e:
            raise WitnessError(500, f"the witness's state {path.name} is unreadable") from e
        if state.origin != origin:
            raise WitnessError(500, f"the witness's state {path.name} is of another log")
        return state

    def latest(self, origin: str) -> str | None:
        """For monitors: the last checkpoint cosigned for ``origin`` — the log's signed note
        with this witness's cosignature — or None (an unknown log, or nothing cosigned yet)."""
        if origin not in self.logs():
            return None
        state = self.state(origin)
        return None if state is None else state.note

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One add-checkpoint at a time: across threads (a lock), across processes (flock)."""
        with self._lock:
            fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    # --- add-checkpoint ---------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one tlog-witness add-checkpoint request body; return the cosignature line(s).

        Raises :class:`WitnessError` with the HTTP status of the refusal (C2SP tlog-witness,
        its current text): 400 malformed, or the old size exceeds the checkpoint's;
        403 a signature by a trusted key does not verify, or none is there; 404 unknown log;
        409 the old size is not the witness's (``size`` says what it is); 422 the consistency
        proof does not verify — a different checkpoint of the same size, a non-empty proof from
        size 0 or between equal sizes included; 413 too long. Nothing changes then.
        """
        old, proof, signed = parse_request(body)
        try:
            text, signatures = note.split_note(signed)
            checkpoint = note.Checkpoint.from_text(text)
        except note.NoteError as e:
            raise WitnessError(400, f"the checkpoint is malformed: {e}") from e
        trusted = self.logs().get(checkpoint.origin)
        if not trusted:
            raise WitnessError(404, f"this witness does not witness the log "
                                    f"{checkpoint.origin!r}")
        _check_signed(text, signatures, trusted, checkpoint.origin)
        if old > checkpoint.size:
            raise WitnessError(400, f"the old size {old} exceeds the checkpoint's "
                                    f"{checkpoint.size}")
        with self._locked():
            state = self.state(checkpoint.origin)
            current = 0 if state is None else state.size
            if old != current:
                raise WitnessError(409, f"the witness's last cosigned size is {current}, not {old}",
                                   size=current)
            self._check_consistent(state, old, proof, checkpoint)
            timestamp = self.clock()
            if state is not None:  # cosignature times never go backwards
                timestamp = max(timestamp, state.cosigned_at)
            cosignature = note.cosign(text, self.name, self._key, timestamp)
            ours = (cosignature.name, cosignature.key_id)
            kept = [s for s in signatures if (s.name, s.key_id) != ours]
            evidence = text + "\n" + "".join(s.to_line() + "\n" for s in (*kept, cosignature))
            new = WitnessState(checkpoint.origin, checkpoint.size, checkpoint.root, evidence,
                               timestamp)
            # Persisted before answering: a cosignature is never given for an unsaved state.
            write_atomic(self._state_file(checkpoint.origin), new.to_json(), 0o600)
        return cosignature.to_line() + "\n"

    @staticmethod
    def _check_consistent(state: WitnessState | None, old: int, proof: list[bytes],
                          checkpoint: note.Checkpoint) -> None:
        if old == checkpoint.size:
            if proof:
                raise WitnessError(422, "the sizes are equal but the consistency proof is not "
                                        "empty")
            expected = merkle.EMPTY_ROOT if state is None else state.root
            if checkpoint.root != expected:
                if state is None:
                    raise WitnessError(422, "a checkpoint of size 0 must have the empty root")
                # Not 409: the old size is the witness's, so this is a proof that does not
                # verify (equal sizes, other roots) — a fork, which the current text answers 422.
                raise WitnessError(422, f"the witness cosigned a different checkpoint of size "
                                        f"{old} (another root): the log forked")
            return
        if old == 0:
            if proof:
                raise WitnessError(422, "the consistency proof must be empty when the old "
                                        "size is 0")
            return  # the first checkpoint this witness sees of this log
        assert state is not None  # noqa: S101 - old == state.size > 0
        try:
            merkle.verify_consistency(old, checkpoint.size, state.root, checkpoint.root, proof)
        except merkle.ProofError as e:
            raise WitnessError(422, f"the consistency proof from {old} to {checkpoint.size} "
                                    f"does not verify: {e}") from e


def _check_signed(text: str, signatures: Iterable[note.Signature],
                  trusted: Iterable[note.Verifier], origin: str) -> None:
    """Raise 403 unless a trusted key signed ``text`` and every line by a trusted key verifies.

    Lines by other keys are ignored (C2SP signed-note), however they repeat or are encoded; a
    trusted key's repeated line counts once, but a line that claims a trusted key and does not
    verify is refused, as the tlog-witness text asks (a bad signature by a trusted key: 403).
    """
    keys = {(v.name, v.key_id): v for v in trusted}
    good = False
    for s in dict.fromkeys(signatures):
        v = keys.get((s.name, s.key_id))
        if v is None:
            continue
        try:
            v.verify(text, s)
        except note.NoteError as e:
            raise WitnessError(403, f"a signature by a key of {origin!r} this witness trusts "
                                    f"does not verify: {e}") from e
        good = True
    if not good:
        raise WitnessError(403, f"the checkpoint is not signed by a key of {origin!r} this "
                                "witness trusts")


# --- the witness's state dir -------------------------------------------------------------------


def _read_name(path: Path) -> str:
    try:
        raw = tomllib.loads((path / CONFIG_FILE).read_text("utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"no witness at {path}: run `callproof witness init NAME`") from e
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path / CONFIG_FILE}: {e}") from e
    name = raw.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{path / CONFIG_FILE}: `name` must be a string")
    return name


def read_logs(path: Path) -> dict[str, tuple[note.Verifier, ...]]:
    """``logs.toml``: ``[[log]]`` tables with ``vkey`` and optionally ``origin``."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    entries = raw.get("log", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `log` must be an array of tables ([[log]])")
    logs: dict[str, tuple[note.Verifier, ...]] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("vkey"), str):
            raise ConfigError(f"{path}: log {i} needs a `vkey` string")
        try:
            verifier = note.Verifier.parse_of(entry["vkey"].strip(), note.ALG_ED25519,
                                              "an Ed25519 (type 0x01) log key")
        except note.NoteError as e:
            raise ConfigError(f"{path}: log {i}: {e}") from e
        origin = entry.get("origin", verifier.name)
        if not isinstance(origin, str) or not origin:
            raise ConfigError(f"{path}: log {i}: `origin` must be a string")
        logs[origin] = (*logs.get(origin, ()), verifier)
    return logs


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def init_witness(state_dir: str | os.PathLike[str], name: str, *,
                 passphrase: bytes | None = None, logs: Iterable[str] = ()) -> Witness:
    """Create a witness state dir: its name, a new key (0600) and the logs it witnesses.

    Refuses (ConfigError) when the dir already holds a witness key.
    """
    path = Path(state_dir)
    try:
        note.Verifier.from_public_key(name, bytes(32), note.ALG_COSIGNATURE_V1)
    except note.NoteError as e:
        raise ConfigError(f"the witness name is refused: {e}") from e
    logs = list(logs)
    for vkey in logs:  # every log key is checked before anything is written
        _log_verifier(vkey)
    if (path / KEY_FILE).exists():
        raise ConfigError(f"{path} already holds a witness key; nothing changed")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = create_key_file(path / KEY_FILE, passphrase)
    (path / CONFIG_FILE).write_text(f"# callproof witness\nname = {_toml_string(name)}\n", "utf-8")
    if not (path / LOGS_FILE).exists():
        (path / LOGS_FILE).write_text(
            "# The logs this witness cosigns: one [[log]] table each, with the log's verifier\n"
            "# key (`callproof audit vkey` on the log's side) and, when it is not the key's\n"
            "# name, its checkpoint origin.\n", "utf-8")
    for vkey in logs:
        add_log(path, vkey)
    return Witness(name, key, path)


def _log_verifier(vkey: str) -> note.Verifier:
    """A log's verifier key, parsed; ConfigError if it is not an Ed25519 note key."""
    try:
        verifier = note.Verifier.parse(vkey.strip())
    except note.NoteError as e:
        raise ConfigError(f"the log key is refused: {e}") from e
    if verifier.algorithm != note.ALG_ED25519:
        raise ConfigError("the log key is not an Ed25519 (type 0x01) note key")
    return verifier


def add_log(state_dir: str | os.PathLike[str], vkey: str, origin: str | None = None) -> str:
    """Add a log (its verifier key) to ``logs.toml``; return its origin."""
    path = Path(state_dir) / LOGS_FILE
    verifier = _log_verifier(vkey)
    origin = origin or verifier.name
    known = read_logs(path) if path.exists() else {}
    if verifier in known.get(origin, ()):
        return origin
    entry = f"\n[[log]]\nvkey = {_toml_string(verifier.to_vkey())}\n"
    if origin != verifier.name:
        entry += f"origin = {_toml_string(origin)}\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(entry)
    return origin
