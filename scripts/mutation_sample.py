"""Sampled mutation testing (docs/testing.md: How we test): mutmut 2.5.1's mutants of one module, a seeded sample of
them applied one at a time, each followed by that module's unit tests. A mutant is killed when the tests fail.

mutmut edits nothing here; this script rewrites src/hskd/<layer>/<module>.py in place and restores it after each
mutant, so run it in a clone of the repository, never beside a running study:

    pip install -e ".[mutation]"          # mutmut 2.5.1, in the project's venv
    git clone -q . /tmp/mutclone && cd /tmp/mutclone
    python scripts/mutation_sample.py training.loop

(the tests run with PYTHONPATH=<clone>/src, so they import the mutated clone). Prints one JSON
line per mutant (status, line, diff) and a summary; `--out FILE` appends the lines to FILE as well.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from mutmut import ALL, Context, RelativeMutationID, list_mutations, mutate

# the unit tests that exercise each module (no e2e test: minutes per mutant)
REPORT_TESTS = ["test_results", "test_plots"]
MODULE_TESTS = {
    "hsk.compression": ["test_compression", "test_strategies", "test_distill", "test_protocol"],
    "hsk.store": ["test_store", "test_distill"],
    "hsk.sources": ["test_distill", "test_protocol"],
    "training.loop": ["test_training", "test_wiring", "test_resume"],
    "models.runtime": ["test_training", "test_wiring", "test_resume"],
    "training.distill": ["test_distill", "test_guards", "test_wiring"],
    "models.teacher": ["test_training", "test_distill", "test_protocol", "test_teacher"],
    "training.finetune": ["test_teacher", "test_resume"],
    **{f"report.{name}": REPORT_TESTS for name in ("runs", "summary", "tables", "minimum", "aggregate")},
    "report.stats": ["test_results", "test_metrics"],
    "common.metrics": ["test_results", "test_metrics"],
}
REPO = Path(__file__).resolve().parent.parent


def mutants(path: str) -> list[RelativeMutationID]:
    """Every mutant of `path`, in mutmut's order (the order `mutmut run` registers them)."""
    return list_mutations(Context(mutation_id=ALL, filename=path, dict_synonyms=[]))


def mutated_source(path: str, mutant: RelativeMutationID) -> str:
    relative = RelativeMutationID(mutant.line, mutant.index, mutant.line_number, filename=path)
    source, applied = mutate(Context(mutation_id=relative, filename=path, dict_synonyms=[]))
    assert applied == 1, (mutant, applied)
    return source


def run_tests(tests: list[str], timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               *(f"tests/{name}.py" for name in tests)]  # fmt: skip
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", choices=sorted(MODULE_TESTS))
    parser.add_argument("--sample", type=int, default=30, help="mutants drawn (default 30)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the draw (default 2026)")
    parser.add_argument("--ids", help="comma-separated mutant numbers (1-based, mutmut's order) instead of a draw")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per mutant; a timeout counts as killed")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    args = parser.parse_args()
    path = f"src/hskd/{args.module.replace('.', '/')}.py"
    os.chdir(REPO)
    original = Path(path).read_text()
    found = mutants(path)
    if args.ids:
        numbers = [int(number) for number in args.ids.split(",")]
    else:
        numbers = sorted(random.Random(args.seed).sample(range(1, len(found) + 1), min(args.sample, len(found))))
    status_counts: dict[str, int] = {}
    for number in numbers:
        source = mutated_source(path, found[number - 1])
        diff = [line for line in difflib.unified_diff(original.splitlines(), source.splitlines(), lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---"))]  # fmt: skip
        try:
            Path(path).write_text(source)
            status = run_tests(MODULE_TESTS[args.module], args.timeout)
        finally:
            Path(path).write_text(original)
        status_counts[status] = status_counts.get(status, 0) + 1
        record = json.dumps({"module": args.module, "id": number, "line": found[number - 1].line_number + 1,
                             "status": status, "diff": diff})  # fmt: skip
        print(record, flush=True)
        if args.out:
            with open(args.out, "a") as out:
                print(record, file=out)
    killed = status_counts.get("killed", 0) + status_counts.get("timeout", 0)
    print(f"{args.module}: {len(found)} mutants, {len(numbers)} run, {killed} killed "
          f"({status_counts.get('timeout', 0)} by timeout), {status_counts.get('survived', 0)} survived")  # fmt: skip


if __name__ == "__main__":
    main()
