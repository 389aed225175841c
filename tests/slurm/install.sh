#!/usr/bin/env bash
# Install a one-node SLURM (slurmctld + slurmd + client tools) and munge for the SLURM test
# (tests/test_slurm.py). Idempotent: does nothing when the tools are already there.
# Exits 0 with a message where it cannot install (no apt-get, not root): the test then skips with
# a printed reason. Exits non-zero when apt-get itself fails (then the test fails: on a root machine
# with apt-get, e.g. CI, it must run).
#   bash tests/slurm/install.sh
set -euo pipefail

slurm_version() { dpkg-query -W -f='slurm ${Version}' slurmctld 2>/dev/null || echo "slurm (not from apt)"; }

need=(slurmctld slurmd sbatch squeue sinfo munged)
missing=()
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "tests/slurm/install.sh: SLURM and munge already installed ($(slurm_version))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/slurm/install.sh: apt-get not available; not installing SLURM (missing: ${missing[*]})"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/slurm/install.sh: not root; not installing SLURM (missing: ${missing[*]})"
    exit 0
fi
echo "tests/slurm/install.sh: installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
echo "tests/slurm/install.sh: installed $(slurm_version)"
