"""The independent C2SP witness that someone else runs (c2sp.org/tlog-witness): it cosigns a
log's checkpoints only when each extends the last it saw. ``server`` keeps its state; ``app`` is
its WSGI face. It imports nothing of the log's store or ``callproof.audit``: the log's client
side is :mod:`callproof.audit.witnessing`.
"""
