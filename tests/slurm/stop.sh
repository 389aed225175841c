#!/usr/bin/env bash
# Stop what tests/slurm/start.sh STATE_DIR started: cancel the test cluster's jobs, stop each daemon
# it recorded in STATE_DIR/started.pids by its pid (never by name), end any process of the cluster's
# jobs that outlived them (found by SLURM_CONF=STATE_DIR/slurm.conf in its environment, ended by pid),
# remove the /etc/slurm/slurm.conf link it made. Safe to run twice.
set -uo pipefail

STATE=${1:?usage: stop.sh STATE_DIR}
RECORD=$STATE/started.pids
log() { echo "tests/slurm/stop.sh: $*"; }
[[ -f "$RECORD" ]] || { log "nothing recorded in $RECORD"; exit 0; }
CONF=$STATE/slurm.conf   # not exported: this script's own environment must not look like a job's

# cancel every job of the test cluster (it only ever ran this test's jobs), then let slurmd reap them
if [[ -f "$CONF" ]] && grep -q "^slurmctld " "$RECORD"; then
    jobs=$(SLURM_CONF=$CONF squeue -h -o %i 2>/dev/null || true)
    if [[ -n "$jobs" ]]; then
        log "cancelling jobs: $(echo $jobs)"
        SLURM_CONF=$CONF scancel $jobs 2>/dev/null || true
        for _ in $(seq 20); do
            [[ -z "$(SLURM_CONF=$CONF squeue -h -t running,completing -o %i 2>/dev/null)" ]] && break
            sleep 0.5
        done
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

# processes of the cluster's jobs that outlived their job (e.g. a Snakemake job step after scancel)
for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    [[ $pid == "$$" ]] && continue
    if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -qxF "SLURM_CONF=$CONF"; then
        log "ending leftover job process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-60))"
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
rm -f "$RECORD"
exit 0
