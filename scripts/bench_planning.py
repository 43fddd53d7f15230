"""Time planning: `snakemake -n` on the paper and smoke configs, and a cold `import hskd.planning.config`.

Each measure is a fresh subprocess, repeated (3 times by default); the median is reported as a Markdown
table and written as JSON. Run from the repository root, or pass --workdir for another checkout (with
PYTHONPATH=<checkout>/src so its own hskd is imported):

    python scripts/bench_planning.py [--repeats 3] [--out results/bench/planning.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"paper": "workflow/configs/paper.yaml", "smoke": "workflow/configs/smoke.yaml"}
IMPORT_PROBE = (
    "import sys, time; start = time.perf_counter(); import hskd.planning.config; "
    "print(time.perf_counter() - start, 'torch' in sys.modules)"
)


def _timed(command: list[str], workdir: Path) -> float:
    """Wall seconds of one run of `command`; raises if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed in {workdir}:\n{done.stderr[-2000:]}")
    return seconds


def _import_probe(workdir: Path) -> tuple[float, bool]:
    """Seconds `import hskd.planning.config` takes in a fresh interpreter, and whether it loaded torch."""
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=workdir, check=True, capture_output=True, text=True)
    seconds, torch_loaded = out.stdout.split()
    return float(seconds), torch_loaded == "True"


def bench(workdir: Path, repeats: int) -> dict:
    """Per measure: every run's seconds and their median."""
    results = {}
    for name, configfile in CONFIGS.items():
        command = [sys.executable, "-m", "snakemake", "-n", "--configfile", configfile]
        runs = [_timed(command, workdir) for _ in range(repeats)]
        results[f"{name}_dry_run"] = {"runs_s": runs, "median_s": statistics.median(runs)}
    probes = [_import_probe(workdir) for _ in range(repeats)]
    runs = [seconds for seconds, _ in probes]
    results["import_hskd_config"] = {
        "runs_s": runs,
        "median_s": statistics.median(runs),
        "imports_torch": any(loaded for _, loaded in probes),
    }
    return results


def markdown(results: dict) -> str:
    lines = ["| measure | median s | runs s |", "|---|---:|---|"]
    for name, row in results.items():
        runs = ", ".join(f"{seconds:.2f}" for seconds in row["runs_s"])
        lines.append(f"| {name} | {row['median_s']:.2f} | {runs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=ROOT, help="checkout to plan in (default: this one)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "planning.json")
    args = parser.parse_args(argv)
    results = bench(args.workdir.resolve(), args.repeats)
    print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"workdir": str(args.workdir.resolve()), "repeats": args.repeats, "python": platform.python_version()}
    args.out.write_text(json.dumps({**record, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
