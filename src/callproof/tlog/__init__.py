"""The transparency-log formats, pure: RFC 6962 Merkle trees and proofs, C2SP signed notes,
checkpoints, cosignatures, tlog-proof and the witness wire codecs. No storage and no clock.

    >>> from callproof.tlog import merkle
    >>> merkle.root_hash([merkle.leaf_hash(b"event")]).hex()[:16]
    'c9c2788297f9c86e'
"""
