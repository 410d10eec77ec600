#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for Labline's Slurm launcher and its tests.
#
#   scripts/slurm/setup.sh          install slurm-wlm and munge from Debian if missing, write the
#                                   configuration, start munged, slurmctld and slurmd, and wait until the
#                                   node is idle. Idempotent: a second run leaves a running cluster alone.
#   scripts/slurm/setup.sh --stop   stop the daemons this script started.
#
# The cluster: one node `localhost` with fake GPUs (empty files, gres `gpu`), one default partition, no
# cgroups (works in a container without systemd), no slurmdbd (no sacct: finished jobs stay visible to
# squeue/scontrol for MinJobAge seconds and are appended to a completion log).
#
# Needs root (apt-get, daemons running as root). Settings, from the environment:
#   LABLINE_SLURM_STATE_DIR  state, spool, logs, pid files, fake GPU files. Default /var/lib/labline-slurm
#   LABLINE_SLURM_PARTITION  partition name. Default labline
#   LABLINE_SLURM_GPUS       fake GPUs on the node. Default 4
#   LABLINE_SLURM_CPUS       CPUs the node offers (may exceed the machine's). Default 8
#   LABLINE_SLURM_MEMORY_MB  memory the node offers, MB. Default 8000
#   LABLINE_SLURM_MIN_JOB_AGE  seconds finished jobs stay in squeue/scontrol. Default 86400
#   LABLINE_SLURM_WAIT_SECONDS how long to wait for the node to become idle. Default 90
# It writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf, and refuses to overwrite ones it did not write.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state_dir="${LABLINE_SLURM_STATE_DIR:-/var/lib/labline-slurm}"
partition="${LABLINE_SLURM_PARTITION:-labline}"
gpus="${LABLINE_SLURM_GPUS:-4}"
cpus="${LABLINE_SLURM_CPUS:-8}"
memory_mb="${LABLINE_SLURM_MEMORY_MB:-8000}"
min_job_age="${LABLINE_SLURM_MIN_JOB_AGE:-86400}"
wait_seconds="${LABLINE_SLURM_WAIT_SECONDS:-90}"
conf_dir=/etc/slurm
marker="labline-single-node-slurm"

say() { echo "slurm-setup: $*"; }
die() {
  echo "slurm-setup: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

stop_requested=0
case "${1:-}" in
  --stop) stop_requested=1 ;;
  -h | --help)
    usage
    exit 0
    ;;
  "") ;;
  *) die "unknown option $1 (use --stop, or no option to start)" ;;
esac

[ "$(id -u)" -eq 0 ] || die "run it as root (it installs packages and starts daemons as root), e.g. sudo $0"

mkdir -p "$state_dir/run"
# One run at a time: test files running in parallel may all call this script. The daemons are started
# with this descriptor closed, so that they do not hold the lock after the script ends.
exec 9>"$state_dir/run/setup.lock"
flock -w 600 9 || die "another setup.sh holds $state_dir/run/setup.lock for 10 minutes"

# A pid file names a live process of the expected program.
alive() {
  local pid_file="$1" program="$2" pid
  [ -s "$pid_file" ] || return 1
  pid="$(cat "$pid_file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  grep -q "$program" "/proc/$pid/cmdline" 2>/dev/null
}

# Stops the process of a pid file, SIGTERM then (after 15 s) SIGKILL.
stop_pid_file() {
  local pid_file="$1" program="$2" pid i
  if ! alive "$pid_file" "$program"; then
    rm -f "$pid_file"
    return 0
  fi
  pid="$(cat "$pid_file")"
  say "stopping $program (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

if [ "$stop_requested" -eq 1 ]; then
  stop_pid_file "$state_dir/run/slurmd.pid" slurmd
  stop_pid_file "$state_dir/run/slurmctld.pid" slurmctld
  stop_pid_file "$state_dir/run/munged.pid" munged
  say "stopped"
  exit 0
fi

# --- install -------------------------------------------------------------------------------------------
missing=()
for program in sbatch squeue scontrol scancel sinfo slurmctld slurmd munged munge; do
  command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing slurm-wlm and munge (missing: ${missing[*]})"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Slurm (slurm-wlm) and munge with your package manager"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null; then
    apt-get update -qq >/dev/null
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
  fi
fi

# --- munge ---------------------------------------------------------------------------------------------
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge
  chmod 0600 /etc/munge/munge.key
  chmod 0755 /run/munge
  say "starting munged"
  # A copy of its pid file under our state dir marks it as ours, for --stop.
  runuser -u munge -- /usr/sbin/munged --force 9>&-
  for _ in $(seq 1 100); do
    munge_ok && break
    sleep 0.1
  done
  munge_ok || die "munged does not answer (munge -n | unmunge); see /var/log/munge/munged.log"
  cp /run/munge/munged.pid "$state_dir/run/munged.pid" 2>/dev/null || true
fi

# --- configuration -------------------------------------------------------------------------------------
[ "$gpus" -ge 1 ] || die "LABLINE_SLURM_GPUS must be at least 1 (got $gpus)"
mkdir -p "$state_dir"/{ctld,spool,log,gpus} "$conf_dir"
# slurmd accepts only character or block devices as GPU files (a plain file is skipped, and Slurm then sets
# no GPU variables in jobs); these have /dev/null's numbers, so nothing is ever written anywhere.
for ((i = 0; i < gpus; i++)); do
  gpu_file="$state_dir/gpus/fakegpu$i"
  [ -c "$gpu_file" ] || { rm -f "$gpu_file" && mknod -m 0666 "$gpu_file" c 1 3; }
done

render() {
  sed -e "s|@MARKER@|$marker|g" \
    -e "s|@STATE_DIR@|$state_dir|g" \
    -e "s|@PARTITION@|$partition|g" \
    -e "s|@GPUS@|$gpus|g" \
    -e "s|@LAST_GPU@|$((gpus - 1))|g" \
    -e "s|@CPUS@|$cpus|g" \
    -e "s|@MEMORY_MB@|$memory_mb|g" \
    -e "s|@MIN_JOB_AGE@|$min_job_age|g" \
    -e "s|@CTLD_PORT@|6817|g" \
    -e "s|@SLURMD_PORT@|6818|g" \
    "$1"
}

changed=0
install_conf() {
  local template="$1" target="$2" rendered
  rendered="$(render "$template")"
  if [ -e "$target" ] && ! grep -q "$marker" "$target"; then
    die "$target exists and was not written by this script; it looks like a real cluster's configuration. Move it away to use the Labline test cluster."
  fi
  if [ ! -e "$target" ] || [ "$rendered" != "$(cat "$target")" ]; then
    printf '%s\n' "$rendered" >"$target"
    changed=1
  fi
}
install_conf "$here/slurm.conf.template" "$conf_dir/slurm.conf"
install_conf "$here/gres.conf.template" "$conf_dir/gres.conf"

# --- daemons -------------------------------------------------------------------------------------------
ctld_pid="$state_dir/run/slurmctld.pid"
slurmd_pid="$state_dir/run/slurmd.pid"
if [ "$changed" -eq 1 ]; then
  # A new configuration: restart what runs, so that it is read (state and queued jobs survive).
  stop_pid_file "$slurmd_pid" slurmd
  stop_pid_file "$ctld_pid" slurmctld
fi
if ! alive "$ctld_pid" slurmctld; then
  say "starting slurmctld (log $state_dir/log/slurmctld.log)"
  slurmctld 9>&- || die "slurmctld did not start; see $state_dir/log/slurmctld.log"
fi
for _ in $(seq 1 100); do
  scontrol ping 2>/dev/null | grep -q 'is UP' && break
  sleep 0.1
done
scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer (scontrol ping); see $state_dir/log/slurmctld.log"
if ! alive "$slurmd_pid" slurmd; then
  say "starting slurmd (log $state_dir/log/slurmd.log)"
  slurmd -N localhost 9>&- || die "slurmd did not start; see $state_dir/log/slurmd.log"
fi

# --- wait for the node -----------------------------------------------------------------------------------
deadline=$((SECONDS + wait_seconds))
node_state=""
while [ "$SECONDS" -lt "$deadline" ]; do
  node_state="$(sinfo --noheader --Node --nodes=localhost --format=%T 2>/dev/null | head -n1)"
  case "$node_state" in
    idle | mixed | allocated | completing)
      say "ready: node localhost is $node_state, partition $partition, $gpus fake GPU(s)"
      exit 0
      ;;
    down* | drain* | drained*)
      # After a restart the node may be marked down or drained; it is ours, so bring it back.
      scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
      ;;
  esac
  sleep 0.5
done
die "node localhost is '${node_state:-unknown}' after ${wait_seconds}s, not idle; see $state_dir/log/slurmd.log and $state_dir/log/slurmctld.log"
