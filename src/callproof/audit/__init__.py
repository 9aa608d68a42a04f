"""The running audit log: checkpoints signed with the log key, witnesses asked to cosign them,
inclusion and consistency proofs, and the export bundle auditors verify offline.

The per-event append lives in ``callproof.store.log_tree``; the formats in ``callproof.tlog``;
the offline verification in ``callproof.auditor``.
"""
