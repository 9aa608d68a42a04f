"""Merkle trees: transparency-dev proof vectors, RFC 6962 roots, and generated proofs."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callproof.errors import ProofError
from callproof.tlog import merkle
from callproof.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    subtree_hasher,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
MERKLE = VECTORS / "merkle"


def _files(kind: str) -> list[Path]:
    return sorted((MERKLE / kind).rglob("*.json"))


def _id(path: Path) -> str:
    return path.relative_to(MERKLE).as_posix()


def _b(value: str) -> bytes:
    return base64.b64decode(value)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_vector_files_are_present() -> None:
    assert len(_files("inclusion")) == 98
    assert len(_files("consistency")) == 98


@pytest.mark.parametrize("path", _files("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    proof = [_b(p) for p in v["proof"] or []]
    args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _files("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    proof = [_b(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), proof)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _rfc6962() -> tuple[list[bytes], list[bytes]]:
    data = _load(VECTORS / "notes.json")["rfc6962_roots"]
    leaves = [leaf_hash(bytes.fromhex(x)) for x in data["leaves_hex"]]
    return leaves, [bytes.fromhex(r) for r in data["roots_hex"]]


@pytest.mark.parametrize("n", range(9))
def test_rfc6962_roots(n: int) -> None:
    leaves, roots = _rfc6962()
    assert root_hash(leaves[:n]) == roots[n]
    tree = CompactRange()
    for h in leaves[:n]:
        tree.append(h)
    assert tree.size == n
    assert tree.root() == roots[n]
    assert len(tree.subtree_hashes) == n.bit_count()


def test_rfc6962_proofs_from_the_vectors_leaves() -> None:
    leaves, roots = _rfc6962()
    lookup = subtree_hasher(leaves)
    for size in range(1, 9):
        for index in range(size):
            verify_inclusion(
                leaves[index], index, size, inclusion_proof(index, size, lookup), roots[size]
            )
        for old in range(1, size + 1):
            verify_consistency(
                old, size, roots[old], roots[size], consistency_proof(old, size, lookup)
            )


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_hash([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert root_hash([a, b]) == node_hash(a, b)
    assert leaf_hash(b"") != node_hash(b"", b"")  # domain separation


def test_compact_range_resume_and_refusals() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(13)]
    tree = CompactRange()
    for h in leaves[:7]:
        tree.append(h)
    resumed = CompactRange.from_hashes(tree.size, tree.subtree_hashes)
    for h in leaves[7:]:
        resumed.append(h)
    assert resumed.root() == root_hash(leaves)
    assert tree.copy().root() == root_hash(leaves[:7])
    assert merkle.TreeBuilder is CompactRange
    with pytest.raises(ProofError, match="3 complete subtrees"):
        CompactRange.from_hashes(7, tree.subtree_hashes[:2])
    with pytest.raises(ProofError, match="negative"):
        CompactRange.from_hashes(-1, [])
    with pytest.raises(ProofError, match="31 bytes"):
        CompactRange.from_hashes(1, [bytes(31)])
    with pytest.raises(ProofError, match="leaf hash is 5 bytes"):
        tree.append(b"short")


def test_proof_builders_refuse_bad_ranges() -> None:
    lookup = subtree_hasher([leaf_hash(b"x")] * 4)
    with pytest.raises(ProofError, match="outside"):
        inclusion_proof(4, 4, lookup)
    with pytest.raises(ProofError, match="no leaves"):
        inclusion_proof(0, 0, lookup)
    with pytest.raises(ProofError, match="empty tree"):
        consistency_proof(0, 4, lookup)
    with pytest.raises(ProofError, match="smaller"):
        consistency_proof(4, 3, lookup)
    assert consistency_proof(4, 4, lookup) == []
    with pytest.raises(ProofError, match=r"subtree_hash\(1, 2\) is 3 bytes"):
        inclusion_proof(0, 2, lambda start, end: b"bad")


def test_verify_messages_are_precise() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    root, lookup = root_hash(leaves), subtree_hasher(leaves)
    proof = inclusion_proof(2, 5, lookup)
    with pytest.raises(ProofError, match="has 2 hashes, expected 3"):
        verify_inclusion(leaves[2], 2, 5, proof[:2], root)
    with pytest.raises(ProofError, match="proof hash 1 is 33 bytes"):
        verify_inclusion(leaves[2], 2, 5, [proof[0], proof[1] + b"x", proof[2]], root)
    with pytest.raises(ProofError, match="gives root"):
        verify_inclusion(leaves[3], 2, 5, proof, root)
    old = root_hash(leaves[:3])
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(3, 5, leaves[0], root, consistency_proof(3, 5, lookup))
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(3, 5, old, leaves[0], consistency_proof(3, 5, lookup))


# --- generated trees -----------------------------------------------------------------------


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def _tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=150, deadline=None)
@given(_tree_and_index(), st.data())
def test_generated_inclusion_proofs(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = _leaves(size)
    root = root_hash(leaves)
    asked: list[tuple[int, int]] = []
    inner = subtree_hasher(leaves)

    def lookup(start: int, end: int) -> bytes:
        asked.append((start, end))
        return inner(start, end)

    proof = inclusion_proof(index, size, lookup)
    verify_inclusion(leaves[index], index, size, proof, root)
    for start, end in asked:  # only complete aligned subtrees or the right edge are requested
        width = end - start
        assert end == size or (width & (width - 1) == 0 and start % width == 0)

    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    leaf, bad_proof, bad_root = leaves[index], list(proof), root
    if target == len(proof):
        leaf = _flip(leaf, bit)
    elif target == len(proof) + 1:
        bad_root = _flip(root, bit)
    else:
        bad_proof[target] = _flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, bad_proof, bad_root)


@settings(max_examples=150, deadline=None)
@given(_tree_and_index(), st.data())
def test_generated_consistency_proofs(case: tuple[int, int], data: st.DataObject) -> None:
    size, old = case[0], case[1] + 1
    leaves = _leaves(size)
    old_root, new_root = root_hash(leaves[:old]), root_hash(leaves)
    asked: list[tuple[int, int]] = []
    inner = subtree_hasher(leaves)

    def lookup(start: int, end: int) -> bytes:
        asked.append((start, end))
        return inner(start, end)

    proof = consistency_proof(old, size, lookup)
    verify_consistency(old, size, old_root, new_root, proof)
    for start, end in asked:
        width = end - start
        assert end == size or (width & (width - 1) == 0 and start % width == 0)

    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    a, b, bad_proof = old_root, new_root, list(proof)
    if target == len(proof):
        a = _flip(a, bit)
    elif target == len(proof) + 1:
        b = _flip(b, bit)
    else:
        bad_proof[target] = _flip(proof[target], bit)
    with pytest.raises(ProofError):
        verify_consistency(old, size, a, b, bad_proof)
    if old < size:
        with pytest.raises(ProofError):
            verify_consistency(old, size, old_root, new_root, proof[:-1])
        with pytest.raises(ProofError):
            verify_consistency(old, size, old_root, new_root, [*proof, proof[0]])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.data())
def test_builder_matches_root_hash(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    split = data.draw(st.integers(0, size))
    tree = CompactRange()
    for i, h in enumerate(leaves[:split]):
        tree.append(h)
        if i % 37 == 0:
            assert tree.root() == root_hash(leaves[: i + 1])
    resumed = CompactRange.from_hashes(split, tree.subtree_hashes)
    for h in leaves[split:]:
        resumed.append(h)
    assert resumed.size == size
    assert resumed.root() == root_hash(leaves)


def test_the_block_wise_tree_gives_the_compact_range_roots() -> None:
    rng = random.Random(6962)
    for size in [*range(0, 70), 255, 256, 257, 1000]:
        leaves = [merkle.leaf_hash(rng.randbytes(rng.randrange(1, 40))) for _ in range(size)]
        tree, done = merkle.CompactRange(), 0
        while done < size:  # blocks of random sizes, with the root checked after each
            step = rng.randrange(1, 40)
            tree.extend(leaves[done:done + step])
            done = min(size, done + step)
            assert tree.size == done and tree.root() == merkle.root_hash(leaves[:done])
        assert tree.root() == merkle.root_hash(leaves)
