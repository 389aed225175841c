#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine for tests/test_slurm.py (Debian, root, no systemd).
#   tests/slurm/start.sh STATE_DIR [PARTITION]
# Writes STATE_DIR/{slurm.conf,gres.conf,logs,pids}, links /etc/slurm/slurm.conf to it (the plugin's
# nested srun inside each job does not see SLURM_CONF), starts munged (unless one is running),
# slurmctld and slurmd, and waits until the node is idle. tests/slurm/stop.sh STATE_DIR undoes it all:
# every daemon started here is recorded in STATE_DIR/started.pids and stopped by its pid.
set -euo pipefail

STATE=${1:?usage: start.sh STATE_DIR [PARTITION]}
PARTITION=${2:-debug}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "tests/slurm/start.sh: $*"; }
die() { echo "tests/slurm/start.sh: ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (slurmd and munged need it)"
for tool in slurmctld slurmd munged sbatch squeue sinfo scontrol; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run tests/slurm/install.sh)"
done

mkdir -p "$STATE/ctld" "$STATE/spool"
STATE=$(cd "$STATE" && pwd)
CONF=$STATE/slurm.conf
touch "$STATE/started.pids"

# --- slurm.conf for this machine ---------------------------------------------------------------
CPUS=$(nproc)
REAL=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n "$REAL" ]] || die "cannot read RealMemory from 'slurmd -C'"
MEMORY=$(( REAL > 2048 ? REAL - 1024 : REAL ))   # leave ~1 GiB to the OS and the daemons
sed -e "s#@STATE@#$STATE#g" -e "s#@CPUS@#$CPUS#g" -e "s#@MEMORY@#$MEMORY#g" -e "s#@PARTITION@#$PARTITION#g" \
    "$HERE/slurm.conf.in" > "$CONF"
cp "$HERE/gres.conf.in" "$STATE/gres.conf"
log "node localhost: CPUs=$CPUS RealMemory=$MEMORY MB, 2 fake GPUs, partition $PARTITION"

# --- /etc/slurm/slurm.conf -> ours (srun inside a job reads the default path) -----------------------
mkdir -p /etc/slurm
if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$CONF" ]]; then
    :
elif [[ -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
    die "/etc/slurm/slurm.conf exists and is not ours: refusing to replace a real SLURM configuration"
else
    ln -s "$CONF" /etc/slurm/slurm.conf
    echo "link /etc/slurm/slurm.conf" >> "$STATE/started.pids"
fi
export SLURM_CONF=$CONF

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -s "$1" ]] && cat "$1" || true; }

# --- munge ---------------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running: using it"
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- munged
    for _ in $(seq 50); do alive "$(pid_of /run/munge/munged.pid)" && break; sleep 0.1; done
    pid=$(pid_of /run/munge/munged.pid)
    alive "$pid" || die "munged did not start"
    echo "munged $pid" >> "$STATE/started.pids"
    log "started munged (pid $pid)"
fi

# --- slurmctld and slurmd ---------------------------------------------------------------------------
start_daemon() {  # name pidfile command...
    local name=$1 pidfile=$2; shift 2
    if alive "$(pid_of "$pidfile")"; then
        log "$name already running (pid $(cat "$pidfile"))"
        return
    fi
    "$@"
    for _ in $(seq 100); do alive "$(pid_of "$pidfile")" && break; sleep 0.1; done
    local pid
    pid=$(pid_of "$pidfile")
    alive "$pid" || { tail -n 20 "$STATE/$name.log" >&2 || true; die "$name did not start"; }
    echo "$name $pid" >> "$STATE/started.pids"
    log "started $name (pid $pid)"
}
start_daemon slurmctld "$STATE/slurmctld.pid" slurmctld -c -f "$CONF"   # -c: forget old jobs
start_daemon slurmd "$STATE/slurmd.pid" slurmd -f "$CONF" -N localhost

# --- wait for the node ------------------------------------------------------------------------------
for i in $(seq 120); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle|mixed|allocated) log "node localhost is $state after $((i / 2)) s"; exit 0 ;;
        down*|drain*|unknown*) [[ $i -eq 10 ]] && scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
die "node localhost not idle after 60 s (state: ${state:-none})"
