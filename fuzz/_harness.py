"""The atheris side of every harness: instrument callproof, then fuzz one ``check_<target>``.

Run a harness directly (``python fuzz/fuzz_ticket.py fuzz/corpus/ticket``) with any libFuzzer
flag, or all of them with ``python fuzz/run.py``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(target: str) -> None:
    import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["callproof", "fuzz._targets"]):
        from fuzz._targets import TARGETS
    from fuzz._mutators import MUTATORS

    check = TARGETS[target]
    # libFuzzer runs argv[0] again for -merge: fuzz/run.py names an executable wrapper here.
    argv = [os.environ.get("CALLPROOF_FUZZ_ARGV0") or sys.argv[0], *sys.argv[1:]]
    structured = MUTATORS.get(target)
    if structured is None:
        atheris.Setup(argv, check)
    else:
        def mutate(data: bytes, max_size: int, seed: int) -> bytes:
            rng = random.Random(seed)  # noqa: S311 - mutation choices, not secrets
            if rng.random() < 0.5:
                out = structured(data, rng)
                if out is not None and len(out) <= max_size:
                    return out
            return bytes(atheris.Mutate(data, max_size))

        atheris.Setup(argv, check, custom_mutator=mutate)
    atheris.Fuzz()
