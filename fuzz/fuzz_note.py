"""Fuzz signed notes, checkpoints, cosignatures and tlog-proofs (callproof.tlog.note).

The property is :func:`fuzz._targets.check_note`; see fuzz/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuzz._harness import main  # noqa: E402

if __name__ == "__main__":
    main("note")
