"""The offline auditor: verify an exported bundle and write the auditor's report.

It reads a bundle and nothing else: it imports ``callproof.protocol`` and ``callproof.tlog``,
never ``callproof.store`` (a test keeps it so).

    >>> from callproof.auditor.bundle import verify_bundle
    >>> report = verify_bundle("bundle/", log_key=pinned_vkey)
"""
