"""Issue 14 item 23: benchmarks/bench_audit.py writes its bundle's times in the unit the app
uses — epoch seconds (ADR 0007) — so the report shows its failed lookups in the bundle's own
days, not as a burst in 1970."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

from callproof.auditor.facts import ReportOptions, read_facts

ROOT = Path(__file__).resolve().parent.parent.parent


def _bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_audit",
                                                  ROOT / "benchmarks/bench_audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_audit"] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_bundles_failed_lookups_are_in_its_own_days(tmp_path: Path) -> None:
    bench = _bench()
    bench.write_bundle(tmp_path, 400)  # type: ignore[attr-defined]
    facts = read_facts(tmp_path, ReportOptions(tz="UTC"))
    hours = sorted(facts.failed_by_hour)
    assert hours, "the bundle has failed lookups"
    first = datetime.fromtimestamp(hours[0], UTC)
    start = datetime.fromtimestamp(bench.START, UTC)  # type: ignore[attr-defined]
    assert first.year == start.year == 2026  # not 1970
    assert abs((first - start).total_seconds()) < 3600
    last = datetime.fromtimestamp(hours[-1], UTC)
    assert (last - first).total_seconds() < 3 * 3600  # every hour is the bundle's own
    assert all(datetime.fromtimestamp(b, UTC).year == 2026 for b in facts.bursts)
    assert sum(facts.failed_by_hour.values()) > 400 // 8  # every call's minute counted
