"""Did SLURM run the jobs of a Snakemake run? `python check_slurm_jobs.py SNAKEMAKE_LOG [JOBCOMP_FILE]`.

Reads, from the log of a `snakemake --executor slurm` run: its SLURM run id (the plugin names every job
of the run after it), the jobs it ran remotely (`rule X:` blocks; local ones are `localrule X:`) and the
SLURM job ids it reports as submitted. Asks SLURM (`squeue --states=all --name RUN_ID`: slurmctld keeps a
finished job's record for MinJobAge) for this run's jobs, the rule being in each job's comment
(`rule_<name>_wildcards_...`). Passes when SLURM's records name the same rules as often as the log, every
record is COMPLETED, the job ids are the ones Snakemake submitted, the training rules are among them and,
given a jobcomp/filetxt file, each job has a COMPLETED line in it. Needs SLURM_CONF of the cluster.
Exit 0 = pass; otherwise one line saying what differs, exit 1.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

REQUIRED_RULES = ("finetune_teacher", "distill")


def slurm_records(run_id: str) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every job SLURM knows by the name run_id."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%T|%k"],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.strip()]


def rule_of(comment: str) -> str:
    match = re.match(r"rule_(\w+?)(_wildcards_|$)", comment)
    return match.group(1) if match else comment


def check(log: str, jobcomp: str | None) -> str | None:
    """None when SLURM ran the log's remote jobs, else what is wrong."""
    run_id = re.search(r"SLURM run ID: (\S+)", log)
    if not run_id:
        return "no 'SLURM run ID' in the log: the run did not use the slurm executor"
    expected = collections.Counter(re.findall(r"^rule (\w+):$", log, re.M))
    if not expected:
        return "the log names no job that ran outside Snakemake (no `rule X:` block)"
    submitted = set(re.findall(r"has been submitted with SLURM jobid (\d+)", log))
    records = slurm_records(run_id.group(1))
    for job_id, state, comment in records:
        if state != "COMPLETED":
            return f"SLURM job {job_id} ({comment}) is {state}"
    by_rule = collections.Counter(rule_of(comment) for _, _, comment in records)
    local = collections.Counter(re.findall(r"^localrule (\w+):$", log, re.M))
    print(f"SLURM ran {len(records)} jobs of run {run_id.group(1)}: {dict(sorted(by_rule.items()))}; "
          f"run by Snakemake itself: {dict(sorted(local.items()))}")
    if by_rule != expected:
        return (f"SLURM's records {dict(sorted(by_rule.items()))} are not the run's remote jobs "
                f"{dict(sorted(expected.items()))}")
    ids = {job_id for job_id, _, _ in records}
    if ids != submitted:
        return f"job ids Snakemake submitted {sorted(submitted, key=int)} != SLURM's {sorted(ids, key=int)}"
    missing = [rule for rule in REQUIRED_RULES if rule not in by_rule]
    if missing:
        return f"no {', '.join(missing)} job went through SLURM"
    if jobcomp is not None:
        completed = set(re.findall(r"^JobId=(\d+) .*JobState=COMPLETED", jobcomp, re.M))
        if not ids <= completed:
            return f"jobs without a COMPLETED line in the jobcomp file: {sorted(ids - completed, key=int)}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    log = Path(argv[0]).read_text()
    jobcomp = Path(argv[1]).read_text() if len(argv) == 2 else None
    problem = check(log, jobcomp)
    if problem:
        print(f"FAIL: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
