# Helpers shared by all rule files (config validation, the wildcard grids, input functions).

import math
from pathlib import Path

from sim2real_scaling.config import (
    ConfigError,
    block_name,
    m_grid_size,
    n_blocks,
    n_chunks,
    n_grid_size,
    validate_config,
)

# One study = one config: a study file given with --configfile REPLACES the embedded default
# (config/config.yaml) instead of being deep-merged into it, which would leak the default's property
# (density) and synthetic section into every other study. --config overrides still apply on top.
if workflow.overwrite_configfiles:
    from snakemake.common.configfile import load_configfile
    from snakemake.utils import update_config

    _study_config = {}
    for _path in workflow.overwrite_configfiles:
        update_config(_study_config, load_configfile(str(_path)))
    update_config(_study_config, workflow.config_settings.overwrite_config or {})
    config.clear()
    config.update(_study_config)

try:
    _validated = validate_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None
config.clear()
config.update(_validated)

STUDY = config["study"]
R = f"{config['results_dir']}/{STUDY}"
LOGS = f"logs/{STUDY}"
PROPERTIES = list(config["properties"])
N_INDEX = list(range(n_grid_size(config)))
CHUNKS = list(range(n_chunks(config)))
DIRECT = config["protocol"]["direct_baseline"]
MULTITASK = config["transfer"] == "multitask"
# A transfer job trains the n of one block (consecutive n indices; protocol.ensembles_per_job sets how many),
# named by its n indices ("3", "0-3") in the file names: property -> block name -> n indices
BLOCKS = {prop: {block_name(b): b for b in n_blocks(config, prop)} for prop in PROPERTIES}
# One chunk per block (the paper's protocol at chunk_size = trials): the transfer job pretrains its own
# networks first, saving a process start (~2.5 s of imports). Several chunks share one pretrain job.
PRETRAIN_IN_TRANSFER_JOB = len(CHUNKS) == 1


# Resources (threads, memory, runtime, GPUs) live in one place: the profile of the machine that runs the
# study (workflow/profiles/default for this one, workflow/profiles/slurm for a cluster); rules declare none.


def block_n_indices(wildcards):
    """The n indices (grid positions) of a training job's block."""
    return BLOCKS[wildcards.property][wildcards.block]


def training_priority(wildcards):
    """Longest training jobs first, so that no core idles at the end while one long job finishes: a job
    trains one ensemble per (n, m) of its block, and pretraining grows with n."""
    m_values = m_grid_size(config, wildcards.property)
    if "block" in wildcards.keys():
        n_indices = block_n_indices(wildcards)
    else:
        n_indices = [int(wildcards.get("n_index", 0))]  # multitask jobs: one n; direct: none (0)
    return len(n_indices) * m_values + 0.5 * n_indices[-1] / max(1, len(N_INDEX) - 1)


# the analysis of a property starts as soon as its trials are done, ahead of any training job still waiting
ANALYSIS_PRIORITY = 1000


def prepared(prop, name):
    return f"{R}/prepared/{prop}/{name}"


def trial_outputs(prefix):
    return {
        "trials": f"{prefix}.trials.csv",
        "groups": f"{prefix}.groups.csv",
        "materials": f"{prefix}.materials.csv",
    }


def chunk_files(prop, kind):
    """The chunk tables of one property (transfer at every n, direct), of one kind."""
    files = []
    for chunk in CHUNKS:
        if MULTITASK:  # one multitask job per n
            files += [f"{R}/trials/{prop}/transfer_n{i}_c{chunk}.{kind}.csv" for i in N_INDEX]
        else:
            files += [f"{R}/trials/{prop}/transfer_n{b}_c{chunk}.{kind}.csv" for b in BLOCKS[prop]]
        if DIRECT:
            files.append(f"{R}/trials/{prop}/direct_c{chunk}.{kind}.csv")
    return files


def analysis(prop, name):
    """A per-property analysis output: pooled tables, fits, figures (collected into the study's files)."""
    return f"{R}/analysis/{prop}/{name}"


def final_outputs():
    return [
        f"{R}/trials.csv",
        f"{R}/summary.csv",
        f"{R}/fits.json",
        f"{R}/report.html",
        f"{R}/report.md",
        f"{R}/run/config.resolved.yaml",
        f"{R}/complete.json",
    ] + ([f"{R}/wiedemann_franz/summary.json"] if config.get("wiedemann_franz") else [])
