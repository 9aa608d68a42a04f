"""The audit log's format layer: RFC 9162 Merkle trees, signed notes, checkpoints, cosignatures.

Pure functions and small value types, no storage and no clock: ``merkle`` hashes leaves, keeps
the incremental tree state and builds and verifies proofs; ``note`` signs and opens C2SP signed
notes (Ed25519), reads and writes tlog checkpoints and makes and checks witness cosignatures.

    >>> from callproof.audit import merkle
    >>> merkle.root_hash([merkle.leaf_hash(b"event")]).hex()[:16]
    'c9c2788297f9c86e'
"""
