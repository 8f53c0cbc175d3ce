#!/usr/bin/env python3
"""Mutation testing of the security and durability core: ``make mutation``.

``run`` runs mutmut (configured in ``pyproject.toml``: the modules and the fast tests it uses) with a
progress line every half minute instead of its spinner, under a deadline, then reports. ``report`` reads
mutmut's results in ``mutants/`` and prints, per module, the mutants made, killed and survived, and the
score (killed / made; a mutant the tests time out on or mypy rejects counts as killed, both gates stop
it landing). A survivor is *explained* when ``docs/testing.md`` names it with the reason it is equivalent
or harmless; the exit status is 1 when the score is under ``--min-score`` or a survivor is unexplained,
so a new survivor is either killed by a test or argued for in the docs.

``mutmut show NAME`` prints a survivor's diff; ``mutmut run NAME`` re-tests one after a new test.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
DOC = ROOT / "docs" / "testing.md"
MUTMUT = Path(sys.executable).parent / "mutmut"

#: what counts as killed among mutmut's own statuses (mutmut.stats.status_by_exit_code): a failed test,
#: a test that timed out, and a mutant mypy rejected (both gates stop it landing)
KILLED = {"killed", "timeout", "caught by type check"}
PROGRESS = re.compile(r"\d+/\d+\s")


def run(jobs: int, deadline_minutes: float, min_score: float) -> int:
    """mutmut run, its spinner reduced to a line every 30 s; stopped (and said so) at the deadline."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(MUTMUT), "run", "--max-children", str(jobs)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # mutmut starts mypy (type_check_command) by name: the virtualenv's, as `make lint` runs it
        env={**os.environ, "PATH": f"{MUTMUT.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert proc.stdout is not None
    last_print, latest, tail = 0.0, "", b""
    os.set_blocking(proc.stdout.fileno(), False)
    while proc.poll() is None:
        if time.monotonic() - started > deadline_minutes * 60:
            os.killpg(proc.pid, signal.SIGTERM)  # mutmut and the mutants it forked: one process group
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            print(f"mutmut stopped at the {deadline_minutes:.0f}-minute deadline; the report is partial")
            report_and_exit_code(min_score)
            return 1
        chunk = proc.stdout.read() or b""
        tail = (tail + chunk)[-4096:]
        for line in re.split(rb"[\r\n]", tail):
            text = line.decode(errors="replace").strip()
            if text and (PROGRESS.search(text) or "done" in text or "Running" in text):
                latest = text.lstrip("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
        if latest and time.monotonic() - last_print >= 30:
            minutes = (time.monotonic() - started) / 60
            print(f"[{minutes:5.1f} min] {latest}", flush=True)
            last_print = time.monotonic()
        time.sleep(1)
    rest = (tail + (proc.stdout.read() or b"")).decode(errors="replace")
    if proc.returncode != 0:
        print(rest[-3000:])
        print(f"mutmut exited {proc.returncode}")
        return proc.returncode
    print(f"mutmut finished in {(time.monotonic() - started) / 60:.1f} min")
    return report_and_exit_code(min_score)


def explained() -> dict[str, str]:
    """Survivor name -> reason, from the rows of docs/testing.md's tables whose first cell names mutants
    (one or several, each in backquotes) and whose last cell gives the reason."""
    found: dict[str, str] = {}
    if DOC.exists():
        for line in DOC.read_text().splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) < 2 or not line.lstrip().startswith("|"):
                continue
            for name in re.findall(r"`([\wǁ.]+__mutmut_\d+)`", cells[0]):
                found[name] = cells[-1]
    return found


def results() -> dict[str, dict[str, int | None]]:
    """Module path -> {mutant name: exit code}, from mutmut's ``.meta`` files."""
    found = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        if codes:
            found[str(meta.relative_to(MUTANTS))[: -len(".meta")]] = codes
    return found


def changed_lines(module: str) -> dict[str, list[str]]:
    """Mutant name -> its changed lines (``-`` original, ``+`` mutant), read from mutmut's copy of
    ``module`` (one function per mutant beside the original), without running mutmut once per mutant."""
    path = MUTANTS / module
    source = path.read_text()
    lines = source.splitlines()
    functions = {
        node.name: lines[node.lineno - 1 : node.end_lineno]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
    }
    dotted = module.removesuffix(".py").replace("/", ".")
    found = {}
    for name, body in functions.items():
        base, _, number = name.rpartition("__mutmut_")
        original = functions.get(f"{base}__mutmut_orig")
        if not number.isdigit() or original is None:
            continue
        changes = [
            line
            for line in difflib.unified_diff(original[1:], body[1:], lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        found[f"{dotted}.{name}"] = [f"{line[0]} {line[1:].strip()}" for line in changes]
    return found


def _row(counts: Counter[str]) -> str:
    """mutants, checked, killed, survived, no test, explained, score (killed / checked)."""
    made = sum(v for k, v in counts.items() if k not in ("skipped", "explained"))
    checked = made - counts["unchecked"]
    score = 100.0 * counts["killed"] / checked if checked else 100.0
    return (
        f"{made:>7} {checked:>7} {counts['killed']:>7} {counts['survived']:>8} {counts['no tests']:>7} "
        f"{counts['explained']:>9} {score:>5.1f}%"
    )


def report_and_exit_code(min_score: float, diffs: bool = False) -> int:
    by_module = results()
    if not by_module:
        print("no mutmut results in mutants/: run `make mutation` first")
        return 1
    reasons = explained()
    total = Counter[str]()
    unexplained: list[str] = []
    heads = " ".join(f"{h:>7}" for h in ("mutants", "checked", "killed", "survived", "no test", "explained"))
    heads += f" {'score':>6}"
    print(f"\n{'module':<34} {heads}")
    for module, codes in by_module.items():
        counts = Counter[str]()
        for name, code in codes.items():
            status = status_by_exit_code[code]
            kind = (
                "killed"
                if status in KILLED
                else "unchecked"
                if status == "not checked"
                else status
                if status in ("survived", "no tests", "skipped")
                else "suspicious"  # a segfault, an interrupted check: neither killed nor explained
            )
            counts[kind] += 1
            if kind in ("survived", "no tests", "suspicious"):
                if name in reasons:
                    counts["explained"] += 1
                else:
                    unexplained.append(f"{name} ({kind})")
        total.update(counts)
        print(f"{module:<34} {_row(counts)}")
    print(f"{'all':<34} {_row(total)}")
    made = sum(v for k, v in total.items() if k not in ("skipped", "explained"))
    checked = made - total["unchecked"]
    score = 100.0 * total["killed"] / checked if checked else 100.0
    if unexplained:
        print(f"\n{len(unexplained)} survivors neither killed nor explained in {DOC.relative_to(ROOT)}:")
        shown = {}
        if diffs:
            for module in by_module:
                shown.update(changed_lines(module))
        for line in unexplained:
            print(f"  {line}")
            for change in shown.get(line.split(" ", 1)[0], []):
                print(f"      {change}")
        print("(`mutmut show NAME` prints one; kill it with a test or add it to the table with its reason)")
    if total["unchecked"]:
        print(
            f"\n{total['unchecked']} mutants not checked yet: the run is incomplete (`make mutation` again)"
        )
    failed = score < min_score or bool(unexplained) or total["unchecked"] > 0
    print(
        f"\nscore {score:.1f}% (at least {min_score:.0f}% wanted), {len(unexplained)} unexplained survivors"
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_cmd = sub.add_parser("run", help="run mutmut, then report")
    run_cmd.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    run_cmd.add_argument("--deadline", type=float, default=90.0, help="minutes before mutmut is stopped")
    rep = sub.add_parser("report", help="report the results of the last run")
    for p in (run_cmd, rep):
        p.add_argument("--min-score", type=float, default=90.0, help="percent of mutants to kill")
    rep.add_argument("--diffs", action="store_true", help="print each unexplained survivor's changed lines")
    args = parser.parse_args()
    if args.command == "run":
        return run(args.jobs, args.deadline, args.min_score)
    return report_and_exit_code(args.min_score, args.diffs)


if __name__ == "__main__":
    sys.exit(main())
