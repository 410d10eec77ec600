#!/bin/sh
# Labline's batch script for Slurm jobs (see slurm.ts). sbatch passes the training command and its arguments
# as this script's arguments, so no value from a spec is ever parsed by a shell: "$@" runs them as given.
#
# A job Slurm requeued (preemption, `scontrol requeue`, node failure) starts again with SLURM_RESTART_COUNT
# set. Labline resumes such a job from its latest checkpoint as a new launch, so this copy must not start the
# trainer a second time: it exits at once (and the launcher cancels it when it sees the requeue first).
if [ "${SLURM_RESTART_COUNT:-0}" != "0" ]; then
  echo "labline: Slurm requeued job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT}); not starting the trainer again: Labline resumes it from the latest checkpoint in a new launch" >&2
  exit 0
fi
# Where the trainer really runs, for the reproducibility record (the worker that submitted sees only its own
# host): one `key=value` per line in the attempt folder. Best effort: nothing here may keep the trainer from
# starting.
if [ -n "${LABLINE_RUN_DIR:-}" ] && [ -n "${LABLINE_LAUNCH_KEY:-}" ]; then
  {
    echo "host=$(hostname 2>/dev/null)"
    echo "slurm_node=${SLURMD_NODENAME:-}"
    echo "cuda_visible_devices=${CUDA_VISIBLE_DEVICES:-}"
    if command -v nvidia-smi >/dev/null 2>&1; then
      nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sed 's/^/gpu=/'
    fi
  } > "$LABLINE_RUN_DIR/attempts/$LABLINE_LAUNCH_KEY/node.txt" 2>/dev/null || true
fi
exec "$@"
