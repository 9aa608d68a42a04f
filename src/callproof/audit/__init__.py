"""The running audit log: checkpoints signed with the log key, witnesses asked to cosign them,
inclusion and consistency proofs, and the export bundle auditors verify offline.

``log`` holds :class:`~callproof.audit.log.AuditLog`; ``witnessing`` is the log's side of the
witnesses (their list and the HTTP push; the witness itself is :mod:`callproof.witness`). The
per-event append lives in ``callproof.store.log_tree``; the formats in ``callproof.tlog``; the
offline verification in ``callproof.auditor``.
"""
