"""RFC 6962 / RFC 9162 Merkle tree hashing, incremental roots, and inclusion/consistency proofs.

Leaves are hashed as SHA-256(0x00 || data) and interior nodes as SHA-256(0x01 || left || right);
the root of the empty tree is SHA-256 of the empty string (RFC 9162 §2.1.1).

The proof builders do not own any storage: they ask a caller-supplied
``subtree_hash(start, end)`` callback for MTH(D[start:end]) of the leaves in ``[start, end)``.
Every range they ask for is either a complete, aligned subtree (``end - start`` a power of two,
``start`` a multiple of it) or the right edge of the tree (``end`` equals the tree size), so a
store that keeps complete-subtree hashes can answer each call in O(log n).

    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> tree = CompactRange()
    >>> for h in leaves:
    ...     tree.append(h)
    >>> tree.root() == root_hash(leaves)
    True
    >>> lookup = subtree_hasher(leaves)
    >>> proof = inclusion_proof(3, 5, lookup)
    >>> verify_inclusion(leaves[3], 3, 5, proof, tree.root())   # returns None, raises ProofError
    >>> old = root_hash(leaves[:2])
    >>> verify_consistency(2, 5, old, tree.root(), consistency_proof(2, 5, lookup))
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from callproof.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "ProofError",
    "SubtreeHash",
    "TreeBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "subtree_hasher",
    "verify_consistency",
    "verify_inclusion",
]


HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""``subtree_hash(start, end)`` returns MTH of the leaves in ``[start, end)``, ``start < end``."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The O(log n) state of an append-only tree: the hashes of its maximal complete subtrees.

    For a tree of ``size`` leaves there is one hash per set bit of ``size``, ordered left to right
    (largest subtree first). Persist ``size`` and ``subtree_hashes`` and resume with
    :meth:`from_hashes`. ``append`` and ``root`` both cost O(log n) hash operations; ``extend``
    appends many leaves at once, a few times faster than ``append`` one by one.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, subtree_hashes: Sequence[bytes]) -> CompactRange:
        """Resume from a stored ``size`` and its complete-subtree hashes (left to right)."""
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        expected = size.bit_count()
        if len(subtree_hashes) != expected:
            raise ProofError(
                f"a tree of size {size} has {expected} complete subtrees, "
                f"got {len(subtree_hashes)} hashes"
            )
        for i, h in enumerate(subtree_hashes):
            _check_hash(h, f"subtree hash {i}")
        state = cls()
        state._size = size
        state._hashes = [bytes(h) for h in subtree_hashes]
        return state

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def subtree_hashes(self) -> tuple[bytes, ...]:
        """The complete-subtree hashes, largest (leftmost) first; one per set bit of ``size``."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf *hash* (see :func:`leaf_hash`), merging equal-sized subtrees."""
        _check_hash(leaf, "leaf hash")
        merged = bytes(leaf)
        bits = self._size
        while bits & 1:
            merged = node_hash(self._hashes.pop(), merged)
            bits >>= 1
        self._hashes.append(merged)
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append many leaf *hashes*, with the roots ``append`` one by one would give.

        The leaves are taken in blocks: each block is the largest aligned complete subtree that
        fits (no higher than the lowest set bit of ``size``), hashed level by level with one
        list comprehension per level and no per-leaf method call, then merged like ``append``.
        Raises :class:`ProofError`, appending nothing, when a hash is not 32 bytes.
        """
        if leaves and set(map(len, leaves)) != {HASH_SIZE}:  # C-speed check of every length
            for leaf in leaves:
                _check_hash(leaf, "leaf hash")
        sha = hashlib.sha256  # node_hash inlined: no function call per node
        hashes, size = self._hashes, self._size
        i, n = 0, len(leaves)
        while i < n:
            height = (n - i).bit_length() - 1
            if size:  # the block must be aligned: no higher than the lowest set bit of size
                height = min(height, (size & -size).bit_length() - 1)
            width = 1 << height
            level: Sequence[bytes] = leaves[i:i + width]
            while len(level) > 1:
                pairs = iter(level)
                level = [sha(b"\x01" + left + right).digest()
                         for left, right in zip(pairs, pairs, strict=False)]
            top = bytes(level[0])
            bits = size >> height  # a complete subtree of this height ends the range: merge
            while bits & 1:
                top = sha(b"\x01" + hashes.pop() + top).digest()
                bits >>= 1
            hashes.append(top)
            size += width
            i += width
        self._size = size

    def root(self) -> bytes:
        """MTH of all leaves appended so far (``EMPTY_ROOT`` for the empty tree)."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> CompactRange:
        """An independent copy of this state."""
        return CompactRange.from_hashes(self._size, self._hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size})"


TreeBuilder = CompactRange
"""Alias: the incremental tree builder is the compact range."""


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (RFC 9162 §2.1.1); the empty list gives ``EMPTY_ROOT``."""
    state = CompactRange()
    state.extend(leaf_hashes)
    return state.root()


def subtree_hasher(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A simple in-memory ``subtree_hash`` callback over all leaf hashes (O(end - start))."""

    def subtree_hash(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaf_hashes):
            raise ProofError(f"range [{start}, {end}) is outside a tree of {len(leaf_hashes)}")
        return root_hash(leaf_hashes[start:end])

    return subtree_hash


# --- proof plans: which subtree ranges make up a proof, leaf side first ----------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Ranges of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), in proof order."""
    if size <= 0:
        raise ProofError(f"tree size {size} has no leaves to prove inclusion of")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + split_point(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Ranges of PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1), in proof order."""
    if old_size <= 0:
        raise ProofError(f"old tree size {old_size}: a proof from the empty tree is meaningless")
    if new_size < old_size:
        raise ProofError(f"new tree size {new_size} is smaller than old tree size {old_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole_old_tree = 0, new_size, old_size, True
    while True:
        if m == hi - lo:
            if not whole_old_tree:
                ranges.append((lo, hi))
            break
        mid = lo + split_point(hi - lo)
        if lo + m <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            m -= mid - lo
            lo = mid
            whole_old_tree = False
    ranges.reverse()
    return ranges


def _fetch(ranges: list[tuple[int, int]], subtree_hash: SubtreeHash) -> list[bytes]:
    proof = []
    for start, end in ranges:
        h = subtree_hash(start, end)
        _check_hash(h, f"subtree_hash({start}, {end})")
        proof.append(h)
    return proof


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The audit path for leaf ``index`` in the tree of ``size`` leaves, leaf side first."""
    return _fetch(_inclusion_ranges(index, size), subtree_hash)


def consistency_proof(old_size: int, new_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    Empty when the sizes are equal; ``old_size`` must be at least 1.
    """
    return _fetch(_consistency_ranges(old_size, new_size), subtree_hash)


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def _shift_while_lsb(fn: int, sn: int, lsb: int) -> tuple[int, int]:
    """Right-shift ``fn`` and ``sn`` while the low bit of ``fn`` equals ``lsb`` and fn > 0."""
    while fn and (fn & 1) == lsb:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Returns None on success and raises :class:`ProofError` otherwise.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")
    expected = len(_inclusion_ranges(index, size))
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    fn, sn, acc = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            acc = node_hash(p, acc)
            fn, sn = _shift_while_lsb(fn, sn, 0)
        else:
            acc = node_hash(acc, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if not hmac.compare_digest(acc, root):
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} gives root {acc.hex()}, "
            f"expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    Edge rules (as in the transparency-dev test vectors): ``new_size < old_size`` and
    ``old_size == 0`` are refused; equal sizes need an empty proof and equal roots (compared
    byte for byte, nothing is hashed); otherwise a non-empty proof of 32-byte hashes is required.
    Returns None on success and raises :class:`ProofError` otherwise.
    """
    if old_size < 0:
        raise ProofError(f"old tree size {old_size} is negative")
    if new_size < old_size:
        raise ProofError(f"new tree size {new_size} is smaller than old tree size {old_size}")
    if old_size == 0:
        raise ProofError("consistency with the empty tree (old size 0) proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError(f"tree sizes are equal ({old_size}) but the proof is not empty")
        if not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"tree sizes are equal ({old_size}) but the roots differ")
        return
    if not proof:
        raise ProofError(f"empty consistency proof from size {old_size} to {new_size}")
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")
    expected = len(_consistency_ranges(old_size, new_size))
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} has {len(proof)} hashes, "
            f"expected {expected}"
        )

    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is one complete subtree of the new one
        path.insert(0, old_root)
    fn, sn = _shift_while_lsb(old_size - 1, new_size - 1, 1)
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_while_lsb(fn, sn, 0)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the new root")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(f"consistency proof does not reproduce the old root of size {old_size}")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(f"consistency proof does not reproduce the new root of size {new_size}")
