#!/usr/bin/env bash
# Stop what tests/slurm/start.sh STATE_DIR started: cancel the test cluster's jobs, stop each daemon
# it recorded in STATE_DIR/started.pids by its pid (never by name), remove the /etc/slurm/slurm.conf
# link it made. Safe to run twice.
set -uo pipefail

STATE=${1:?usage: stop.sh STATE_DIR}
RECORD=$STATE/started.pids
log() { echo "tests/slurm/stop.sh: $*"; }
[[ -f "$RECORD" ]] || { log "nothing recorded in $RECORD"; exit 0; }
export SLURM_CONF=$STATE/slurm.conf

# cancel every job of the test cluster (it only ever ran this test's jobs), then let slurmd reap them
if [[ -f "$SLURM_CONF" ]] && grep -q "^slurmctld " "$RECORD"; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [[ -n "$jobs" ]]; then
        log "cancelling jobs: $(echo $jobs)"
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 20); do [[ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ]] && break; sleep 0.5; done
    fi
fi

stop_pid() {  # name pid
    local name=$1 pid=$2
    if ! kill -0 "$pid" 2>/dev/null; then log "$name (pid $pid) already gone"; return; fi
    # a pid from an old record may belong to another process by now: only stop the daemon itself
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]]; then
        log "pid $pid is not $name any more: left alone"; return
    fi
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return; }; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null && log "killed $name (pid $pid)"
}

# stop in reverse order of start: slurmd, slurmctld, munged
tac "$RECORD" | while read -r name value; do
    case "$name" in
        link) [[ -L "$value" ]] && rm -f "$value" && log "removed link $value" ;;
        *) stop_pid "$name" "$value" ;;
    esac
done
rm -f "$RECORD"
exit 0
