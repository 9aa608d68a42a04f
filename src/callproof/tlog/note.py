"""C2SP signed notes (v1.0.0, Ed25519), tlog checkpoints (v1.0.0) and cosignatures (v1.0.1).

A signed note is a text ending in a newline, a blank line, then one or more signature lines
``— <key name> base64(key ID || signature)``. A checkpoint is a note whose text is the origin,
the tree size and the base64 root hash (plus optional extension lines). A witness cosignature is
a note signature of type 0x04 over ``cosignature/v1\\ntime <ts>\\n`` + the checkpoint text, whose
bytes are key ID || big-endian u64 timestamp || Ed25519 signature. No clock is read here: the
cosignature time is always a parameter.

Reading follows Go's ``golang.org/x/mod/sumdb/note`` (C2SP signed-note: "verifiers MUST ignore
signatures from unknown keys"): a line by a key the reader does not know is kept but never
judged — repeated, or in non-canonical base64, it does not make the note malformed — and a
known key's repeated line counts once. callproof checks every line of a known key, where Go
checks only the first: a known key's second line that does not verify refuses the note.

    >>> log = Signer.generate("example.com/log")
    >>> cp = Checkpoint("example.com/log", 3, bytes(32))
    >>> signed = sign_note(cp.to_text(), [log])
    >>> note = open_note(signed, [log.verifier()])
    >>> Checkpoint.from_text(note.text) == cp
    True
    >>> witness_key = Ed25519PrivateKey.generate()
    >>> cosig = cosign(note.text, "witness.example/w1", witness_key, timestamp=1_700_000_000)
    >>> witness = Verifier.from_public_key(
    ...     "witness.example/w1", witness_key.public_key(), ALG_COSIGNATURE_V1)
    >>> opened = open_note(add_signatures(signed, [cosig]), [log.verifier()], required=[witness])
    >>> [v.timestamp for v in opened.verified]
    [None, 1700000000]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callproof.errors import NoteError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "Note",
    "NoteError",
    "Signature",
    "Signer",
    "VerifiedSignature",
    "Verifier",
    "add_signatures",
    "cosign",
    "cosignature_message",
    "key_id",
    "open_note",
    "sign_note",
    "split_note",
    "verify_cosignature",
]


ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_NOTE_BYTES = 65_536
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1
MAX_TREE_SIZE = 2**64 - 1

_EM_DASH = "\u2014"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str, *, canonical: bool = True) -> bytes:
    """Standard, padded base64; with ``canonical`` the encoding must also round-trip.

    Signature lines are decoded as Go's ``sumdb/note`` does (``base64.StdEncoding``): padding
    is required, but unused low bits of the last character need not be zero.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise NoteError(f"{what} is not valid base64") from e
    if canonical and _b64(raw) != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _check_name(name: str) -> None:
    if not name:
        raise NoteError("key name is empty")
    if "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} contains a space or '+'")
    if _CONTROL.search(name):
        raise NoteError(f"key name {name!r} contains a control character")


def _check_text(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains a control character other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteError(f"{what} is not valid Unicode text") from e


def key_id(name: str, algorithm: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || algorithm || public_key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([algorithm]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 (type 0x04) cosigner signs for ``checkpoint_text`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes that follow the key ID.

    ``encoded`` is the line's base64 as it was read (None for a signature made here); it is
    written back by :meth:`to_line`, so a note re-assembles to the bytes it came from, and it
    takes no part in comparisons: two encodings of the same bytes are the same signature.
    """

    name: str
    key_id: int
    data: bytes
    encoded: str | None = field(default=None, compare=False, repr=False)

    def to_line(self) -> str:
        """The line, without its final newline."""
        encoded = self.encoded if self.encoded is not None else \
            _b64(self.key_id.to_bytes(4, "big") + self.data)
        return f"{_EM_DASH} {self.name} {encoded}"

    @classmethod
    def from_line(cls, line: str) -> Signature:
        """Parse one signature line (without its final newline).

        As Go's ``sumdb/note``: the name must be a valid key name and the rest standard padded
        base64 of at least 5 bytes; its unused low bits need not be zero (the line's own text
        is kept in :attr:`encoded`).
        """
        if not line.startswith(_EM_DASH + " "):
            raise NoteError(f"signature line {line[:40]!r} does not start with '\u2014 '")
        name, sep, encoded = line[2:].partition(" ")
        if not sep:
            raise NoteError(f"signature line {line[:40]!r} has no signature after the name")
        _check_name(name)
        raw = _unb64(encoded, f"signature of {name!r}", canonical=False)
        if len(raw) < 5:
            raise NoteError(f"signature of {name!r} is {len(raw)} bytes, too short")
        return cls(name, int.from_bytes(raw[:4], "big"), raw[4:],
                   None if _b64(raw) == encoded else encoded)


@dataclass(frozen=True)
class Verifier:
    """A public key that may sign notes: type 0x01 (Ed25519) or 0x04 (Ed25519 cosignature)."""

    name: str
    key_id: int
    public_key: bytes
    algorithm: int = ALG_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.algorithm not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"verifier key of {self.name!r}: unknown type 0x{self.algorithm:02x}")
        if len(self.public_key) != 32:
            raise NoteError(
                f"verifier key of {self.name!r} is {len(self.public_key)} bytes, expected 32"
            )
        expected = key_id(self.name, self.algorithm, self.public_key)
        if self.key_id != expected:
            raise NoteError(
                f"verifier key of {self.name!r}: key ID {self.key_id:08x} does not match "
                f"the key ({expected:08x})"
            )

    @classmethod
    def from_public_key(
        cls, name: str, public_key: bytes | Ed25519PublicKey, algorithm: int = ALG_ED25519
    ) -> Verifier:
        """Build a verifier (and compute its key ID) from a name and an Ed25519 public key."""
        if isinstance(public_key, Ed25519PublicKey):
            public_key = public_key.public_bytes_raw()
        _check_name(name)
        return cls(name, key_id(name, algorithm, public_key), bytes(public_key), algorithm)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse ``name+hex8(keyid)+base64(type || public key)``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be name+keyid+key")
        name, hex_id, encoded = parts
        _check_name(name)
        if not _HEX8.fullmatch(hex_id):
            raise NoteError(f"verifier key of {name!r}: key ID {hex_id!r} is not 8 hex digits")
        raw = _unb64(encoded, f"verifier key of {name!r}")
        if not raw:
            raise NoteError(f"verifier key of {name!r} is empty")
        return cls(name, int(hex_id, 16), raw[1:], raw[0])

    @classmethod
    def parse_of(cls, vkey: str, algorithm: int, what: str) -> Verifier:
        """Parse a verifier key that must be of ``algorithm``; ``what`` names the key in the
        refusal (``a cosignature (type 0x04) key``)."""
        verifier = cls.parse(vkey)
        if verifier.algorithm != algorithm:
            raise NoteError(f"not {what}")
        return verifier

    def to_vkey(self) -> str:
        """The ``name+hex8+base64`` verifier key string."""
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([self.algorithm]) + self.public_key)}"

    def verify(self, text: str, signature: Signature) -> int | None:
        """Verify ``signature`` over note ``text``; return the cosignature time (type 0x04).

        Raises :class:`NoteError` if the name, key ID or signature does not match.
        """
        if (signature.name, signature.key_id) != (self.name, self.key_id):
            raise NoteError(f"signature by {signature.name!r} is not from key {self.to_vkey()}")
        timestamp: int | None = None
        if self.algorithm == ALG_COSIGNATURE_V1:
            if len(signature.data) != 72:
                raise NoteError(
                    f"cosignature of {self.name!r} is {len(signature.data)} bytes, expected 72"
                )
            timestamp = int.from_bytes(signature.data[:8], "big")
            message = cosignature_message(text, timestamp)
            sig = signature.data[8:]
        else:
            if len(signature.data) != 64:
                raise NoteError(
                    f"signature of {self.name!r} is {len(signature.data)} bytes, expected 64"
                )
            message, sig = text.encode("utf-8"), signature.data
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig, message)
        except InvalidSignature as e:
            raise NoteError(f"signature by {self.name!r} ({self.key_id:08x}) is invalid") from e
        return timestamp


@dataclass(frozen=True, repr=False, eq=False)
class Signer:
    """An Ed25519 (type 0x01) note signing key with its name."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hex8(keyid)+base64(0x01 || 32-byte seed)``."""
        if not skey.startswith(_PRIVATE_PREFIX):
            raise NoteError("signer key does not start with PRIVATE+KEY+")
        parts = skey[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise NoteError("signer key must be PRIVATE+KEY+name+keyid+key")
        name, hex_id, encoded = parts
        _check_name(name)
        if not _HEX8.fullmatch(hex_id):
            raise NoteError(f"signer key of {name!r}: key ID {hex_id!r} is not 8 hex digits")
        raw = _unb64(encoded, f"signer key of {name!r}")
        if len(raw) != 33:
            raise NoteError(f"signer key of {name!r} is {len(raw)} bytes, expected 33")
        if raw[0] != ALG_ED25519:
            raise NoteError(f"signer key of {name!r}: unknown type 0x{raw[0]:02x}")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id != int(hex_id, 16):
            raise NoteError(
                f"signer key of {name!r}: key ID {hex_id} does not match the key "
                f"({signer.key_id:08x})"
            )
        return signer

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self.private_key.public_key().public_bytes_raw())

    def to_skey(self) -> str:
        """The ``PRIVATE+KEY+...`` string (secret!)."""
        seed = self.private_key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{_b64(bytes([1]) + seed)}"

    def verifier(self) -> Verifier:
        return Verifier.from_public_key(self.name, self.private_key.public_key())

    def sign(self, text: str) -> Signature:
        """Sign a note text (no format checks; prefer :func:`sign_note`)."""
        return Signature(self.name, self.key_id, self.private_key.sign(text.encode("utf-8")))

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified, the key that made it and, for cosignatures, its time."""

    signature: Signature
    verifier: Verifier
    timestamp: int | None


@dataclass(frozen=True)
class Note:
    """An opened note: its text, every signature line (in order) and those that verified."""

    text: str
    signatures: tuple[Signature, ...]
    verified: tuple[VerifiedSignature, ...]

    @property
    def unverified(self) -> tuple[Signature, ...]:
        """Signatures by keys the caller did not name (kept, e.g. other witnesses), each
        signature once however often its line was repeated."""
        known = {(v.verifier.name, v.verifier.key_id) for v in self.verified}
        seen: set[Signature] = set()
        found = []
        for s in self.signatures:
            if (s.name, s.key_id) not in known and s not in seen:
                seen.add(s)
                found.append(s)
        return tuple(found)

    def to_text(self) -> str:
        """The note as it was opened: text, blank line, all signature lines."""
        return _assemble(self.text, self.signatures)


def _assemble(text: str, signatures: Iterable[Signature]) -> str:
    return text + "\n" + "".join(s.to_line() + "\n" for s in signatures)


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text does not end with a newline")
    _check_text(text, "note text")


def _no_duplicates(signatures: Iterable[Signature]) -> None:
    seen: set[tuple[str, int]] = set()
    for s in signatures:
        if (s.name, s.key_id) in seen:
            raise NoteError(f"note has two signatures by {s.name!r} ({s.key_id:08x})")
        seen.add((s.name, s.key_id))


def split_note(
    note: str | bytes, *, max_bytes: int = MAX_NOTE_BYTES, max_signatures: int = MAX_SIGNATURES
) -> tuple[str, tuple[Signature, ...]]:
    """Check a note's structure (no cryptography) and split it into text and signatures.

    Every signature line is returned, in order, repeats included: which lines count is for the
    reader that knows the keys (:func:`open_note`, :func:`~callproof.tlog.cosign.check_quorum`).
    As in Go's ``sumdb/note``, a repeated line or a line in non-canonical base64 does not make
    the note malformed (C2SP signed-note: signatures by unknown keys are ignored).
    """
    if len(note) > max_bytes:
        raise NoteError(f"note is longer than {max_bytes} bytes")
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError("note is not valid UTF-8") from e
    _check_text(note, "note")
    if len(note.encode("utf-8")) > max_bytes:
        raise NoteError(f"note is longer than {max_bytes} bytes")
    if not note.endswith("\n"):
        raise NoteError("note does not end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise NoteError("note has no signatures")
    if len(lines) > max_signatures:
        raise NoteError(f"note has {len(lines)} signatures, more than {max_signatures}")
    return text, tuple(Signature.from_line(line) for line in lines)


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Sign ``text`` (which must end with a newline) with every signer; return the note."""
    _check_note_text(text)
    signatures = [s.sign(text) for s in signers]
    if not signatures:
        raise NoteError("a note needs at least one signer")
    _no_duplicates(signatures)
    return _assemble(text, signatures)


def add_signatures(note: str, signatures: Iterable[Signature]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note, refusing a signature by a
    key that already signed it (the note's own lines are kept as they are)."""
    text, existing = split_note(note)
    added = list(signatures)
    _no_duplicates(added)
    present = {(s.name, s.key_id) for s in existing}
    for s in added:
        if (s.name, s.key_id) in present:
            raise NoteError(f"note has two signatures by {s.name!r} ({s.key_id:08x})")
    return _assemble(text, (*existing, *added))


def open_note(
    note: str | bytes,
    verifiers: Iterable[Verifier],
    *,
    required: Iterable[Verifier] = (),
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> Note:
    """Parse ``note`` and verify every signature line by a known key.

    Known keys are ``verifiers`` plus ``required``. Lines by other keys are kept, not checked
    (C2SP signed-note: unknown signatures are ignored), however they repeat. Every line by a
    known key must verify; a known key's repeated line counts once (:attr:`Note.verified`
    holds each key once, at its first line). Refused (:class:`NoteError`): malformed or
    over-long notes, a failing signature by a known key, no verified signature at all, or a
    ``required`` key without a verified signature.
    """
    text, signatures = split_note(note, max_bytes=max_bytes, max_signatures=max_signatures)
    must = list(required)
    known: dict[tuple[str, int], Verifier] = {}
    for v in (*verifiers, *must):
        other = known.setdefault((v.name, v.key_id), v)
        if other != v:
            raise NoteError(f"two different verifier keys share name {v.name!r} and key ID")
    verified: dict[tuple[str, int], VerifiedSignature] = {}
    for s in signatures:
        match = known.get((s.name, s.key_id))
        if match is not None:
            timestamp = match.verify(text, s)
            verified.setdefault((s.name, s.key_id), VerifiedSignature(s, match, timestamp))
    if not verified:
        raise NoteError("note has no verified signature by a known key")
    for v in must:
        if (v.name, v.key_id) not in verified:
            raise NoteError(f"note is not signed by required key {v.name!r} ({v.key_id:08x})")
    return Note(text, signatures, tuple(verified.values()))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint v1.0.0 note text: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        named = [("origin", self.origin), *(("extension line", e) for e in self.extensions)]
        for what, line in named:
            if not line:
                raise NoteError(f"checkpoint {what} is empty")
            if "\n" in line:
                raise NoteError(f"checkpoint {what} contains a newline")
            _check_text(line, f"checkpoint {what}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {self.size} is outside 0..2^64-1")
        if len(self.root) != 32:
            raise NoteError(f"checkpoint root hash is {len(self.root)} bytes, expected 32")

    def to_text(self) -> str:
        """The note text (every line newline-terminated)."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(f"checkpoint has {len(lines)} lines, expected at least 3")
        origin, size_line, root_line, *extensions = lines
        if not _DECIMAL.fullmatch(size_line):
            raise NoteError(f"checkpoint tree size {size_line[:30]!r} is not a plain decimal")
        root = _unb64(root_line, "checkpoint root hash")
        return cls(origin, int(size_line), root, tuple(extensions))


def cosign(
    checkpoint_text: str, witness_name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> Signature:
    """A type 0x04 cosignature of ``checkpoint_text`` (the note text, not the signed note).

    The caller must have verified the log's signature and the consistency of the checkpoint
    first; ``timestamp`` is the POSIX time of cosigning.
    """
    Checkpoint.from_text(checkpoint_text)
    _check_name(witness_name)
    public = private_key.public_key().public_bytes_raw()
    message = cosignature_message(checkpoint_text, timestamp)
    data = timestamp.to_bytes(8, "big") + private_key.sign(message)
    return Signature(witness_name, key_id(witness_name, ALG_COSIGNATURE_V1, public), data)


def verify_cosignature(
    checkpoint_text: str, signature: Signature, verifier: Verifier, *, not_after: int | None = None
) -> int:
    """Verify a type 0x04 cosignature and return its timestamp.

    With ``not_after`` (a POSIX time the caller supplies), cosignatures dated later are refused.
    """
    if verifier.algorithm != ALG_COSIGNATURE_V1:
        raise NoteError(f"verifier {verifier.name!r} is not a cosignature (type 0x04) key")
    timestamp = verifier.verify(checkpoint_text, signature)
    if timestamp is None:  # unreachable: type 0x04 always carries a time
        raise NoteError(f"cosignature by {verifier.name!r} carries no timestamp")
    if not_after is not None and timestamp > not_after:
        raise NoteError(f"cosignature by {verifier.name!r} is dated {timestamp}, after {not_after}")
    return timestamp
