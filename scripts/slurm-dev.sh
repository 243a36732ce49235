#!/usr/bin/env bash
# A one-machine Slurm cluster to try `khd server --executor slurm` (as root; Debian: apt-get
# install slurm-wlm munge): munged, slurmctld and slurmd in a folder of their own, with two fake
# GPUs as GRES, the same as the tests start (test/helpers/slurm.ts).
#
#   sudo scripts/slurm-dev.sh /tmp/khd-slurm          # prints the SLURM_CONF to export
#   export SLURM_CONF=/tmp/khd-slurm/slurm.conf
#   khd server --executor slurm --data-dir /tmp/khd-data
#   sudo scripts/slurm-dev.sh /tmp/khd-slurm stop
set -euo pipefail
dir="${1:?usage: slurm-dev.sh DIR [stop]}"
if [ "${2:-}" = stop ]; then
  pids=""
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2>/dev/null && pids="$pids $pid"
    fi
  done
  # Gone before this returns: they write their state on the way out, and the folder may go next.
  for _ in $(seq 300); do
    alive=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.05
  done
  echo "stopped the cluster in $dir"
  exit 0
fi
mkdir -p "$dir"/{state,spool,dev}
for i in 0 1; do [ -e "$dir/dev/nvidia$i" ] || mknod "$dir/dev/nvidia$i" c 195 "$i"; done
host=$(hostname -s)
# Free ports of their own: two clusters (a bench beside another) never meet.
read -r ctld_port slurmd_port < <(python3 -c 'import socket
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
print(*ports)')
cat > "$dir/slurm.conf" <<CONF
ClusterName=khddev
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SlurmUser=root
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
# Batch jobs scheduled at once (2.9 s from sbatch to running without it here, 0.9 s with it).
SchedulerParameters=batch_sched_delay=0
AccountingStorageType=accounting_storage/none
MinJobAge=300
NodeName=$host CPUs=$(nproc) RealMemory=8000 Gres=gpu:2 State=UNKNOWN
PartitionName=khd Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$host Name=gpu File=$dir/dev/nvidia[0-1]" > "$dir/gres.conf"
export SLURM_CONF="$dir/slurm.conf"
munged --socket="$dir/munge.sock" --key-file=/etc/munge/munge.key --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge.seed" --force
slurmctld -i
slurmd
for _ in $(seq 100); do sinfo -h -o %T | grep -q idle && break; sleep 0.1; done
sinfo
echo "export SLURM_CONF=$dir/slurm.conf   # then: khd server --executor slurm (sessions ask for at most 8000 MB: pass a smaller --memory to khd run, or raise RealMemory)"
