#!/usr/bin/env bash
# Start a throwaway single-node Slurm cluster ("melkit-ci") on this machine, for CI's Slurm test of
# deploy/slurm/melkit-array.sbatch. Debian 12 (bookworm, Slurm 22.05), run as root, no systemd
# needed: munged, slurmctld and slurmd are started directly. Idempotent: a second run with the
# daemons up only waits for (or resumes) the node. Exits 0 once `sinfo` shows the node idle;
# on failure it prints the tails of the logs and exits non-zero.
#   sudo xtask/slurm/start-local-slurm.sh        # env: SLURM_WAIT_S (default 60)
set -euo pipefail

WAIT_S=${SLURM_WAIT_S:-60}
NODE=$(hostname -s)
CONF=/etc/slurm/slurm.conf
LOG=/var/log/slurm

[[ $(id -u) -eq 0 ]] || { echo "start-local-slurm: must run as root" >&2; exit 2; }

# A daemon counts as running unless it is a zombie: where PID 1 reaps late (containers), a
# killed daemon lingers as "[slurmd] <defunct>", which plain `pgrep -x` still matches.
running() { pgrep -r D,R,S -x "$1" >/dev/null; }

fail() {
    echo "start-local-slurm: $*" >&2
    for f in /var/log/munge/munged.log "$LOG/slurmctld.log" "$LOG/slurmd.log"; do
        [[ -f $f ]] && { echo "---- tail $f" >&2; tail -n 30 "$f" >&2; }
    done
    sinfo -N -l 2>&1 | sed 's/^/sinfo: /' >&2 || true
    exit 1
}

# 1. Packages (skipped when already installed). procps (pgrep) is not in the debian:12 image.
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v pgrep >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurm-wlm munge procps
fi

# 2. munge: key (mode 0400, owned by munge) and daemon.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! running munged; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
fi
for _ in $(seq 20); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n </dev/null | unmunge >/dev/null || fail "munge round trip failed"

# 3. slurm.conf: this machine is both controller and only compute node, reached on 127.0.0.1 (the
#    host name need not resolve). No cgroups (works in containers without systemd): linuxproc
#    process tracking, no task/accounting plugins. EnforcePartLimits=ALL makes sbatch reject a
#    request the node can never meet (--cpus-per-task=8 on 2 CPUs) instead of pending forever;
#    MinJobAge keeps finished jobs in `scontrol show job` for 10 min (there is no accounting).
install -d -m 0755 /etc/slurm "$LOG" /var/spool/slurmctld /var/spool/slurmd
if ! running slurmctld || [[ ! -f $CONF ]]; then
    CPUS=$(nproc)
    MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $MEM ]] || MEM=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
    cat >"$CONF" <<EOF
# Written by xtask/slurm/start-local-slurm.sh (CI's single-node test cluster).
ClusterName=melkit-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
EnforcePartLimits=ALL
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SchedulerType=sched/backfill
MailProg=/bin/true
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
fi
# slurmd loads a cgroup plugin even when no cgroup plugin is configured; 22.05's default
# (autodetect) picks cgroup/v2 on a cgroup2 host and needs systemd over dbus or a writable
# /sys/fs/cgroup, and stops with "Hybrid mode is not supported" on mixed mounts. cgroup/v1 does
# nothing until used, so it starts anywhere; Slurm >= 24 can say "disabled" instead.
if [[ ! -f /etc/slurm/cgroup.conf ]]; then
    major=$(slurmd -V | sed -n 's/^slurm[^ ]* \([0-9]*\)\..*/\1/p')
    if ((${major:-22} >= 24)); then echo "CgroupPlugin=disabled"; else echo "CgroupPlugin=cgroup/v1"; fi \
        >/etc/slurm/cgroup.conf
fi

# 4. Daemons (daemonised; never a second copy).
running slurmctld || slurmctld || fail "slurmctld did not start"
running slurmd || slurmd || fail "slurmd did not start"

# 5. Wait until the node is idle (resume it if it is down or drained).
deadline=$((SECONDS + WAIT_S))
while :; do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1 || true)
    case $state in
        idle|mixed|allocated) echo "start-local-slurm: node $NODE is $state (${SECONDS}s)"; exit 0 ;;
        down*|drain*|fail*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    ((SECONDS < deadline)) || fail "node $NODE not idle after ${WAIT_S}s (state: '${state:-none}')"
    sleep 1
done
