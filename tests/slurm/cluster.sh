#!/usr/bin/env bash
# A one-node SLURM cluster on loopback, for tests: munged, slurmctld and slurmd of the Debian packages,
# every config/state/log/pid file in one folder, no accounting database.
#
#   tests/slurm/cluster.sh start DIR   # installs slurm-wlm + munge if missing (apt, needs root), starts the
#                                      # daemons, waits until the node is idle; prints the exports that use it
#                                      # (SLURM_CONF; PATH with DIR/bin/srun, see write_srun_shim)
#   tests/slurm/cluster.sh stop DIR    # cancels this cluster's jobs, kills exactly the PIDs it started
#   tests/slurm/cluster.sh env DIR     # prints the exports again
#
# Clients (sbatch, squeue, scontrol, Snakemake's SLURM plugin) find this cluster through SLURM_CONF, and
# the munge socket through slurm.conf's AuthInfo. Ports are free ones picked at start (or SLURMCTLD_PORT /
# SLURMD_PORT), so a cluster already running on this machine is never touched. MinJobAge (how long
# slurmctld keeps a finished job's record, which `squeue --states=all` and `scontrol show job` read) is 3600 s
# here (SLURM_MIN_JOB_AGE), so a test can read every job of its run; jobcomp/filetxt also appends one line
# per finished job to DIR/jobcomp.txt, a record that outlives MinJobAge.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$2

die() { echo "cluster.sh: $*" >&2; exit 1; }

# the PID in file $1, if that process is alive and its command is $2
live_pid() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc 0-9 <"$file")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 1
    echo "$pid"
}

print_env() {
    echo "export SLURM_CONF=$dir/slurm.conf"
    echo "export PATH=$dir/bin:\$PATH"
}

# Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.x) runs the rule with `srun`, in an environment
# stripped of every SLURM_* variable but the job's ids, SLURM_CONF included. A real cluster's srun finds its
# config at /etc/slurm/slurm.conf or (configless) /run/slurm/conf; this one's lives in DIR only, so the jobs
# get an `srun` first on PATH (sbatch --export=ALL) that names it and runs the real one.
write_srun_shim() {
    local real
    real=$(command -v srun) || die "srun not found"
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$dir/slurm.conf" "$real" >"$dir/bin/srun"
    chmod +x "$dir/bin/srun"
}

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || die "slurm-wlm/munge are missing and installing them needs root"
    echo "cluster.sh: installing slurm-wlm and munge (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$dir/apt.log" 2>&1 || { cat "$dir/apt.log" >&2; die "apt-get update failed"; }
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >>"$dir/apt.log" 2>&1 \
        || { tail -20 "$dir/apt.log" >&2; die "apt-get install slurm-wlm munge failed"; }
}

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

write_config() {
    local node cpus mem_total real_memory ctld_port slurmd_port
    node=$(hostname -s)
    cpus=$(nproc)
    mem_total=$(free -m | awk '/^Mem:/ {print $2}')
    # a bit under the real figure: slurmd drains a node whose RealMemory exceeds what it finds
    real_memory=$(( mem_total * 9 / 10 ))
    ctld_port=${SLURMCTLD_PORT:-$(free_port)}
    slurmd_port=${SLURMD_PORT:-$(free_port)}
    while [[ -z ${SLURMD_PORT:-} && $slurmd_port == "$ctld_port" ]]; do slurmd_port=$(free_port); done
    mkdir -p "$dir/state" "$dir/spool"
    chmod 700 "$dir/state" "$dir/spool"

    cat >"$dir/slurm.conf" <<EOF
# one-node test cluster written by tests/slurm/cluster.sh
ClusterName=hskdtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=${SLURM_DEBUG:-info}
SlurmdDebug=${SLURM_DEBUG:-info}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
LaunchType=launch/slurm
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MinJobAge=${SLURM_MIN_JOB_AGE:-3600}
InactiveLimit=0
KillWait=10
SlurmctldTimeout=60
SlurmdTimeout=120
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$real_memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    echo "$node" >"$dir/node"
}

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    live_pid "$dir/slurmctld.pid" slurmctld >/dev/null && die "a cluster is already running in $dir"
    install_packages
    write_config
    write_srun_shim
    export SLURM_CONF=$dir/slurm.conf
    local t0=$SECONDS

    # munge: our own key, socket, pid and log (never the system's /etc/munge key or /run/munge socket)
    if [[ ! -s $dir/munge.key ]]; then
        mungekey --create --keyfile="$dir/munge.key" 2>/dev/null \
            || dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$dir/munge.key"
    # --force: the folder may sit under /tmp, which munged's directory checks call insecure
    munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
        --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" 2>>"$dir/munged.log" \
        || die "munged did not start: $(tail -3 "$dir/munged.log")"
    for _ in $(seq 50); do [[ -S $dir/munge.socket ]] && break; sleep 0.1; done
    live_pid "$dir/munged.pid" munged >/dev/null || die "munged did not start: $(tail -3 "$dir/munged.log")"

    # both daemonize and write their pid files (SlurmctldPidFile / SlurmdPidFile above); -c: no old state
    slurmctld -c -f "$SLURM_CONF" 2>>"$dir/slurmctld.log" || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log")"
    slurmd -f "$SLURM_CONF" 2>>"$dir/slurmd.log" || die "slurmd did not start: $(tail -5 "$dir/slurmd.log")"

    local node state=""
    node=$(cat "$dir/node")
    for _ in $(seq 120); do
        state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
        [[ $state == idle ]] && break
        sleep 0.5
    done
    live_pid "$dir/slurmctld.pid" slurmctld >/dev/null || die "slurmctld died: $(tail -5 "$dir/slurmctld.log")"
    live_pid "$dir/slurmd.pid" slurmd >/dev/null || die "slurmd died: $(tail -5 "$dir/slurmd.log")"
    [[ $state == idle ]] || die "node $node is '${state:-not listed}', not idle, after 60 s: $(tail -5 "$dir/slurmd.log")"
    echo "cluster.sh: node $node idle after $((SECONDS - t0)) s (config $SLURM_CONF)" >&2
    print_env
}

stop() {
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd)
    export SLURM_CONF=$dir/slurm.conf
    local pid
    # this cluster's jobs (SLURM_CONF names only it), so that slurmstepd and the job processes end too
    if live_pid "$dir/slurmctld.pid" slurmctld >/dev/null; then
        scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
        for _ in $(seq 40); do
            [[ -z $(squeue -h -t RUNNING,COMPLETING,PENDING,CONFIGURING -o %i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
    for daemon in slurmd slurmctld munged; do
        pid=$(live_pid "$dir/$daemon.pid" "$daemon") || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.2; done
        if [[ -d /proc/$pid ]]; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        echo "cluster.sh: stopped $daemon ($pid)" >&2
    done
}

case $action in
    start) start ;;
    stop) stop ;;
    env) dir=$(cd "$dir" && pwd); print_env ;;
    *) usage ;;
esac
