"""The offline auditor: verify an exported bundle and write the auditor's report.

It reads a bundle and nothing else: it imports ``callproof.protocol`` and ``callproof.tlog``,
never ``callproof.store`` (a test keeps it so).

- :mod:`~callproof.auditor.bundle`: the bundle's files and :func:`verify_bundle`, its verdict;
- :mod:`~callproof.auditor.scan`: the per-line checks that need no order (leaf hashes, ticket
  signatures), on a pool of processes;
- :mod:`~callproof.auditor.story`: each ticket's events replayed through its state machine;
- :mod:`~callproof.auditor.facts`: what the entries say, counted, and the anomalies;
- :mod:`~callproof.auditor.report`: the HTML report, in each language;
- :mod:`~callproof.auditor.charts`: its page, charts and tables.

    >>> from callproof.auditor.bundle import verify_bundle
    >>> report = verify_bundle("bundle/", log_key=pinned_vkey)
"""
