"""Run every fuzzer for a bounded time, keep what it learnt, fail on a crash.

    python fuzz/run.py --seconds 80               # all four, two at a time (CI)
    python fuzz/run.py --seconds 600 --only note  # one, longer

For each target this runs ``fuzz/fuzz_<target>.py`` (atheris, libFuzzer) for ``--seconds`` on
its kept corpus ``fuzz/corpus/<target>/`` plus a scratch directory for new inputs, then merges
(``-merge=1``) into the kept corpus only the new inputs that reach code no kept input reaches,
so the corpus stays small. A crash (an exception the property does not allow, a failed
assertion, a timeout or an out-of-memory) is kept as ``artifacts/fuzz/<target>-crash-<sha1>``
(or ``-timeout-``/``-oom-``), its log as ``artifacts/fuzz/<target>.log``; the run then exits
with status 1. Replay a crash with ``python fuzz/fuzz_<target>.py artifacts/fuzz/<file>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
TARGETS = ("ticket", "code", "note", "bundle")
#: The largest input each fuzzer makes: past the library's own limits where it has one (a
#: ticket is refused over 4 KiB), enough for a small bundle otherwise.
MAX_LEN = {"ticket": 5000, "code": 256, "note": 8192, "bundle": 16384}
#: Seconds one input may take before it counts as a hang (a denial of service).
TIMEOUT = 10
#: A kept corpus larger than this many files is reported: prune it by hand (see README).
CORPUS_WARN = 80


@dataclass
class Job:
    target: str
    process: subprocess.Popen[bytes]
    scratch: Path
    log: Path
    started: float
    wall: float


def _wrapper(folder: Path, target: str) -> Path:
    """An executable that runs the harness with this Python: libFuzzer re-runs its argv[0]
    for ``-merge``, so argv[0] must be a program, not a ``.py`` file."""
    path = folder / f"fuzz_{target}"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FUZZ / f"fuzz_{target}.py"}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _dict(target: str) -> list[str]:
    path = FUZZ / "dicts" / f"{target}.dict"
    return [f"-dict={path}"] if path.exists() else []


def _env(wrapper: str) -> dict[str, str]:
    return {**os.environ, "CALLPROOF_FUZZ_ARGV0": wrapper}


def _start(target: str, seconds: int, work: Path, artifacts: Path) -> Job:
    scratch = work / f"new-{target}"
    scratch.mkdir()
    log = artifacts / f"{target}.log"
    cmd = [str(_wrapper(work, target)), f"-max_total_time={seconds}", f"-timeout={TIMEOUT}",
           f"-max_len={MAX_LEN[target]}", "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/{target}-", *_dict(target), str(scratch),
           str(FUZZ / "corpus" / target)]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL, cwd=ROOT, env=_env(cmd[0]))
    return Job(target, process, scratch, log, time.monotonic(), time.time())


def _merge(target: str, into: Path, sources: list[Path], work: Path, log: Path) -> None:
    """libFuzzer's merge: copy into ``into`` the inputs of ``sources`` that reach an edge no
    input of ``into`` reaches (edges only, not hit counts: fewer files)."""
    cmd = [str(_wrapper(work, target)), "-merge=1", "-use_counters=0",
           f"-max_len={MAX_LEN[target]}", f"-timeout={TIMEOUT}", str(into), *map(str, sources)]
    with open(log, "ab") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603
                       cwd=ROOT, check=False, env=_env(cmd[0]))


def _keep_new(job: Job, work: Path) -> int:
    """Add to the kept corpus the new inputs that add coverage; how many were added."""
    corpus = FUZZ / "corpus" / job.target
    before = set(os.listdir(corpus))
    if any(job.scratch.iterdir()):
        _merge(job.target, corpus, [job.scratch], work, job.log)
    return len(set(os.listdir(corpus)) - before)


def minimise(target: str, work: Path, artifacts: Path) -> tuple[int, int]:
    """Rebuild a kept corpus as its ``seed-*`` and ``regress-*`` files plus the fewest of the
    others that reach every edge they reach. Returns (files before, files after)."""
    corpus = FUZZ / "corpus" / target
    keep, rest = work / f"keep-{target}", work / f"rest-{target}"
    keep.mkdir()
    rest.mkdir()
    files = sorted(corpus.iterdir())
    for path in files:
        named = path.name.startswith(("seed-", "regress-"))
        shutil.copy2(path, (keep if named else rest) / path.name)
    _merge(target, keep, [rest], work, artifacts / f"{target}-minimise.log")
    for path in files:
        if not (keep / path.name).exists():
            path.unlink()
    for path in keep.iterdir():
        if not (corpus / path.name).exists():
            shutil.copy2(path, corpus / path.name)
    return len(files), len(os.listdir(corpus))


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--only", choices=TARGETS, action="append",
                        help="run only this target (repeatable)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="fuzzers at once (default: 2, or 1 on one core)")
    parser.add_argument("--no-merge", action="store_true",
                        help="leave the kept corpora as they are")
    parser.add_argument("--minimise", action="store_true",
                        help="only shrink the kept corpora (keeps seed-*, regress-*); no fuzzing")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "fuzz")
    args = parser.parse_args(argv)
    try:
        import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    targets = args.only or list(TARGETS)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="callproof-fuzz-") as tmp:
        work = Path(tmp)
        if args.minimise:
            for target in targets:
                before, after = minimise(target, work, args.artifacts)
                print(f"{target}: {before} -> {after} files", flush=True)
            return 0
        pending, running = list(targets), list[Job]()
        while pending or running:
            while pending and len(running) < max(args.jobs, 1):
                target = pending.pop(0)
                print(f"== fuzz {target}: {args.seconds} s", flush=True)
                running.append(_start(target, args.seconds, work, args.artifacts))
            time.sleep(0.5)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                code = job.process.returncode
                took = time.monotonic() - job.started
                crashes = sorted(p.name for p in args.artifacts.glob(f"{job.target}-*")
                                 if p.suffix != ".log" and p.stat().st_mtime >= job.wall - 1)
                added = 0 if args.no_merge else _keep_new(job, work)
                kept = len(os.listdir(FUZZ / "corpus" / job.target))
                stats = [line for line in job.log.read_text("utf-8", "replace").splitlines()
                         if line.startswith("stat::number_of_executed_units")]
                runs = stats[-1].split(":")[-1].strip() if stats else "?"
                print(f"   {job.target}: exit {code} after {took:.0f} s, {runs} inputs run, "
                      f"{added} new kept (corpus: {kept} files)", flush=True)
                if kept > CORPUS_WARN:
                    print(f"   {job.target}: the kept corpus has {kept} files, over "
                          f"{CORPUS_WARN}: prune it (fuzz/README.md)", flush=True)
                if code != 0:
                    failed.append(job.target)
                    print(f"!! {job.target} FAILED; kept: {', '.join(crashes) or 'no file'} in "
                          f"{args.artifacts}\n{_tail(job.log)}", flush=True)
                shutil.rmtree(job.scratch, ignore_errors=True)
    if failed:
        print(f"fuzz: {len(failed)} of {len(targets)} failed: {', '.join(failed)}")
        return 1
    print(f"fuzz: all {len(targets)} targets ran {args.seconds} s without a failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
