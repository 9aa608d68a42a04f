"""Fuzz ticket parsing and verification (callproof.protocol.ticket, callproof.protocol.jws).

The property is :func:`fuzz._targets.check_ticket`; see fuzz/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuzz._harness import main  # noqa: E402

if __name__ == "__main__":
    main("ticket")
