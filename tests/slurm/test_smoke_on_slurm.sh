#!/usr/bin/env bash
# The smoke study through Snakemake's SLURM executor on a real one-node SLURM (tests/slurm/cluster.sh), and
# the same study run locally: their tables must be equal, and SLURM's own job records must show that sbatch
# ran every non-local job of the DAG. Run by .ci/run after pytest; not part of `pytest -q`.
#
#   tests/slurm/test_smoke_on_slurm.sh          # needs root (apt-get, daemons) and `pip install -e ".[slurm]"`
#
# Env: HSKD_SLURM_WORK=DIR  work in DIR (kept) instead of a temp folder (deleted after a pass)
#      HSKD_SLURM_SERIAL=1  run the local study after the SLURM one instead of beside it
# The daemons are stopped on every exit (trap). Exit 0 = pass.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/slurm
say() { echo "[slurm-test $(date +%H:%M:%S)] $*"; }
fail() { echo "[slurm-test] FAIL: $*" >&2; exit 1; }

python -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || fail "snakemake-executor-plugin-slurm is not installed: pip install -e \".[slurm]\""
command -v hskd >/dev/null || fail "hskd is not on PATH (activate the venv)"

if [[ -n ${HSKD_SLURM_WORK:-} ]]; then
    WORK=$HSKD_SLURM_WORK; KEEP=1; mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/hskd-slurm-test.XXXXXX"); KEEP=0
fi
WORK=$(cd "$WORK" && pwd)
CLUSTER=$WORK/cluster
LOCAL_PID="" SLURM_PID=""

# stop a Snakemake this script started (SIGTERM: the SLURM one cancels its jobs), by its PID
stop_run() {
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_run "$SLURM_PID"
    stop_run "$LOCAL_PID"
    "$HERE/cluster.sh" stop "$CLUSTER" || true
    if [[ $rc -eq 0 && $KEEP -eq 0 ]]; then
        rm -rf "$WORK"
    else
        echo "[slurm-test] work folder kept: $WORK (cluster logs in $CLUSTER)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a copy of the workflow, as tests/conftest.py copy_workflow does
copy_workflow() {
    mkdir -p "$1"
    cp "$ROOT/Snakefile" "$ROOT/config.yaml" "$1/"
    cp -r "$ROOT/workflow" "$ROOT/envs" "$1/"
}

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
SMOKE=(--configfile workflow/configs/smoke.yaml --config results_dir=results/smoke glue_dir=results/smoke/glue)

t0=$SECONDS
"$HERE/cluster.sh" start "$CLUSTER" >"$WORK/cluster.env"
. "$WORK/cluster.env"   # SLURM_CONF: this cluster, for sbatch/squeue here and in the jobs (--export=ALL)
say "cluster up in $((SECONDS - t0)) s"

copy_workflow "$WORK/slurm"
copy_workflow "$WORK/local"

# each Snakemake runs in the background (exec: its PID is the one recorded), so that a signal to this
# script reaches the trap at once (bash runs traps only between foreground commands) and the trap stops it
start_local() {
    (cd "$WORK/local" && exec env -u SLURM_CONF python -m snakemake --cores 2 "${SMOKE[@]}" \
        >"$WORK/local.log" 2>&1) &
    LOCAL_PID=$! local_start=$(date +%s)
}
wait_local() {
    wait "$LOCAL_PID" || { tail -40 "$WORK/local.log" >&2; fail "the local run failed"; }
    LOCAL_PID=""
}

if [[ -z ${HSKD_SLURM_SERIAL:-} ]]; then
    # beside the SLURM run: it waits on status polls most of the time
    start_local
fi

# The SLURM run: the workflow's own profile; what this test cluster needs on top: squeue for the status
# (no accounting database; MinJobAge keeps finished jobs), short polls, SLURM logs kept for the checks.
say "smoke study through the SLURM executor"
t1=$SECONDS
(
    cd "$WORK/slurm"
    exec python -m snakemake --workflow-profile workflow/profiles/slurm \
        --slurm-status-command squeue --slurm-init-seconds-before-status-checks 3 \
        --slurm-keep-successful-logs --slurm-logdir "$WORK/slurm_logs" --latency-wait 5 \
        "${SMOKE[@]}" >"$WORK/slurm.log" 2>&1
) &
SLURM_PID=$!
wait "$SLURM_PID" || { tail -8 "$CLUSTER/slurmctld.log" >&2; tail -40 "$WORK/slurm.log" >&2; fail "the SLURM run failed"; }
SLURM_PID=""
t_slurm=$((SECONDS - t1))
say "SLURM run done in $t_slurm s"

[[ -n $LOCAL_PID ]] || start_local
wait_local
say "local run done in $(( $(stat -c %Y "$WORK/local.log") - local_start )) s"

# 1. the same tables
python "$HERE/compare_tables.py" "$WORK/slurm/results/smoke" "$WORK/local/results/smoke" \
    || fail "the SLURM run's tables differ from the local run's"

# 2. SLURM ran the jobs: the DAG's non-local jobs (the SLURM run's log calls them `rule X:`, local ones
#    `localrule X:`) against SLURM's records of this run (job name = the plugin's run id; the rule is in the
#    job comment `rule_<name>_wildcards_...`), read with squeue (MinJobAge keeps them) and the jobcomp file.
python "$HERE/check_slurm_jobs.py" "$WORK/slurm.log" "$CLUSTER/jobcomp.txt" \
    || fail "SLURM's job records do not show the SLURM run's jobs"

# 3. the local run submitted nothing, and no job of ours is left in the queue
left=$(squeue --noheader --states=PENDING,RUNNING,COMPLETING --format=%i | wc -l)
[[ $left -eq 0 ]] || fail "$left SLURM job(s) still queued or running"
if grep -q "SLURM run ID" "$WORK/local.log"; then fail "the local run used the SLURM executor"; fi

say "PASS (SLURM run $t_slurm s; total $((SECONDS - t0)) s)"
