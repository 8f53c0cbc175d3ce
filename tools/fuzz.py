#!/usr/bin/env python3
"""Coverage-guided fuzzing of the wire codecs (DHCP, PXE options, TFTP) with atheris: ``make fuzz``.

Each target of ``tests/fuzz_targets.py`` runs in a child process under libFuzzer (atheris instruments
``netboot.protocol`` and the targets for coverage), seeded from the firmware captures in ``tests/fixtures``,
for ``--runs`` inputs. Only :class:`~netboot.protocol.errors.DecodeError` may escape a target; any other
exception or a failed round-trip check is a crash: libFuzzer stops that target, the input is copied to
``tests/corpus/<target>/`` (replayed from then on by ``tests/protocol/test_corpus.py`` in ``make test``)
and this script exits 1. The working corpus of each run stays in a temporary directory.

Targets run two at a time (the machine has two cores); the table at the end gives cases run, cases/s,
the coverage edges libFuzzer reached and the crashes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
MAX_LEN = {"dhcp": 1500, "pxe": 300, "tftp": 1200}


@dataclass(frozen=True)
class Result:
    target: str
    runs: int
    seconds: float
    edges: int
    crashes: list[Path]
    returncode: int


def child(target: str, runs: int, workdir: Path) -> None:
    """In the child: instrument, seed, fuzz. Does not return (libFuzzer exits the process)."""
    import atheris  # imported here so the parent and the replay test need no atheris

    sys.path.insert(0, str(TESTS))
    with atheris.instrument_imports(include=["netboot.protocol", "fuzz_targets"]):
        import fuzz_targets
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(fuzz_targets.seeds(target)):
        (corpus / f"seed-{n}").write_bytes(seed)
    for found in sorted((fuzz_targets.CORPUS / target).glob("[!.]*")):
        shutil.copy(found, corpus / f"found-{found.name}")
    args = [
        sys.argv[0],
        f"-runs={runs}",
        f"-max_len={MAX_LEN[target]}",
        f"-artifact_prefix={workdir}/crash-",
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=1024",
        str(corpus),
    ]
    atheris.Setup(args, fuzz_targets.TARGETS[target])
    atheris.Fuzz()


def run(target: str, runs: int, log_dir: Path) -> Result:
    """One target in its own process; its libFuzzer log is ``log_dir/<target>.log``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"netboot-fuzz-{target}-"))
    log = log_dir / f"{target}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", target, "--runs", str(runs), "--workdir", str(workdir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    executed = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    edges = re.findall(r"\bcov: (\d+)", text)
    kept = []
    for crash in sorted(workdir.glob("crash-*")):
        dest = TESTS / "corpus" / target / f"found-{hashlib.sha1(crash.read_bytes()).hexdigest()[:12]}"
        shutil.copy(crash, dest)
        kept.append(dest)
    shutil.rmtree(workdir, ignore_errors=True)
    return Result(
        target,
        int(executed[-1]) if executed else 0,
        seconds,
        int(edges[-1]) if edges else 0,
        kept,
        proc.returncode,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=sorted(MAX_LEN), help="dhcp, pxe, tftp (default: all)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target (default 1 000 000)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="targets at once")
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="where libFuzzer's logs go (default: temp)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.workdir)
        return 0
    unknown = set(args.targets) - set(MAX_LEN)
    if unknown:
        parser.error(
            f"unknown target(s): {', '.join(sorted(unknown))}; choose from {', '.join(sorted(MAX_LEN))}"
        )
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="netboot-fuzz-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    what = ", ".join(args.targets)
    print(f"fuzzing {what}: {args.runs:,} inputs each, {args.jobs} at a time; logs in {log_dir}")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run(t, args.runs, log_dir), args.targets))
    print(f"\n{'target':<8} {'cases':>10} {'seconds':>8} {'cases/s':>8} {'edges':>6}  crashes")
    failed = False
    for r in results:
        rate = r.runs / r.seconds if r.seconds else 0.0
        crashes = ", ".join(str(p.relative_to(ROOT)) for p in r.crashes) or "none"
        print(f"{r.target:<8} {r.runs:>10,} {r.seconds:>8.0f} {rate:>8.0f} {r.edges:>6}  {crashes}")
        short = r.runs < args.runs
        if r.crashes or r.returncode != 0 or short:
            failed = True
            why = "crashed" if r.crashes else f"exited {r.returncode}" if r.returncode else "stopped short"
            print(f"  {r.target}: {why}; see {log_dir / (r.target + '.log')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
