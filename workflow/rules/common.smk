# Helpers shared by the rule files (config validation, the wildcard grids, file names, the config slices
# each rule declares as params, input functions).

import copy

from snakemake.utils import validate

from sim2real_scaling.data.fetch import FETCHABLE, RADONPY_PROPERTIES, RAW_FILES

from sim2real_scaling.config import (
    ConfigError,
    block_name,
    check_semantics,
    chunk_trials,
    coerce_config,
    describe_validation_error,
    m_grid_size,
    n_blocks,
    n_chunks,
    n_grid_size,
    table_path,
)

# ---- the config ------------------------------------------------------------------------------------------
# Snakemake has merged config/config.yaml (the settings every study starts from), the study's config
# (--configfile; plain `snakemake`: config/default.yaml, named by workflow/profiles/default) and --config.
coerce_config(config)  # strings from --config read as the types the schema asks for
try:
    validate(config, "../schemas/config.schema.yaml")  # fills in the schema's defaults
except WorkflowError as exc:
    hint = (
        ". No study given? Run one with --configfile, e.g. `snakemake --configfile config/polymer.yaml`; plain "
        "`snakemake` runs config/default.yaml, named by the default profile workflow/profiles/default (which "
        "--workflow-profile <other> or none replaces)"
        if not {"study", "properties"} <= set(config)
        else ""
    )
    raise WorkflowError(
        f"invalid config: {describe_validation_error(exc, config)}{hint}"
    ) from None
try:
    check_semantics(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

STUDY = config["study"]
# where the fetch rules write the public data (data.dir's default; data.dir may name another folder instead)
FETCHED = "resources/data"
R = f"{config['results_dir']}/{STUDY}"
LOGS = f"logs/{STUDY}"
DATA = config["data"]["dir"]
PROPERTIES = list(config["properties"])
N_INDEX = list(range(n_grid_size(config)))
CHUNKS = list(range(n_chunks(config)))
DIRECT = config["protocol"]["direct_baseline"]
MULTITASK = config["transfer"] == "multitask"
# A transfer job trains the n of one block (consecutive n indices; protocol.ensembles_per_job sets how many),
# named by its n indices ("3", "0-3") in the file names: property -> block name -> n indices
BLOCKS = {
    prop: {block_name(b): b for b in n_blocks(config, prop)} for prop in PROPERTIES
}
# The methods (trial tables and networks are named by them): the transfer method, and the references direct
# (learning from the experiments alone) and simulation (the simulated value itself, recalibrated per trial).
TRANSFER_METHOD = "multitask" if MULTITASK else "finetune"
# Fine-tuning pretrains in the transfer job itself when it has the only chunk of its block (the paper's
# protocol at chunk_size = trials; it saves a process start, ~2.5 s of imports), or when every trial has its
# own pretraining draw (no network is shared between chunks); otherwise one pretrain job per block pretrains
# the draws every chunk shares. Multitask learning has no pretraining.
PRETRAIN_IN_TRANSFER_JOB = len(CHUNKS) == 1
PER_TRIAL_DRAWS = config["protocol"]["pretrain_replicates"] == "per_trial"
PRETRAIN_JOB = not MULTITASK and not PRETRAIN_IN_TRANSFER_JOB and not PER_TRIAL_DRAWS
# A job that pretrains shared draws saves them (models/<property>/<method>_n<block>.pt); one network per trial is
# not saved (500 trials x 10 n of them would be about a gigabyte for the polymer study)
SAVE_PRETRAINED = not MULTITASK and PRETRAIN_IN_TRANSFER_JOB and not PER_TRIAL_DRAWS
# the grid depends on the trials (and the seed) only where test pairs' simulated rows are withheld per trial
EXCLUDE_TEST_PAIRS = (
    config["input_kind"] == "smiles_pair"
    and config["multitask"]["exclude_test_pairs_from_source"]
)

# Resources (threads, memory, runtime, GPUs) live in one place: the profile of the machine that runs the
# study (workflow/profiles/default here, workflow/profiles/slurm on a cluster); rules declare none.


# ---- config slices as params -----------------------------------------------------------------------------
# Every rule declares the config it uses as params, one param per top-level config key (and `property`, the
# entry of the job's own property), so that Snakemake's params trigger reruns a job when that part of the
# config changes, and only then. Its script hands the stage a dict of exactly these params
# (sim2real_scaling.workflow_script.config_slices); no stage sees the whole config.
def slices(*keys, drop=None, keep=None):
    """Params for the config keys ``keys``; ``drop`` = {key: [sub-keys]} leaves out parts a rule does not use
    (e.g. the trial count from a pretrain job's protocol), ``keep`` = {key: [sub-keys]} keeps only those.
    """
    drop, keep = drop or {}, keep or {}
    out = {}
    for key in keys:
        value = copy.deepcopy(config[key])
        if key in keep:
            value = {sub: value[sub] for sub in keep[key] if sub in value}
        for sub in drop.get(key, ()):
            value.pop(sub, None)
        out[key] = value
    return out


def prepare_slices():
    """The config that prepare reads (the tables' settings and the grid; not the training)."""
    not_prepare = ["chunk_size", "ensembles_per_job", "pretrain_replicates"]
    not_prepare += ["direct_baseline"] + ([] if EXCLUDE_TEST_PAIRS else ["trials"])
    # with test pairs withheld, the n grid ends at the fewest source rows any trial's split leaves
    seed = ["seed"] if EXCLUDE_TEST_PAIRS else []
    return slices(
        *seed,
        "input_kind",
        "transfer",
        "descriptor",
        "grid",
        "protocol",
        "multitask",
        "wiedemann_franz",
        keep={"descriptor": ["set"], "multitask": ["exclude_test_pairs_from_source"]},
        drop={"protocol": not_prepare},
    )


def training_slices(
    *leave_out, optimizers=("pretrain", "finetune", "direct"), selection=True
):
    """What a training job depends on (its trials come as a param of their own, `trials`). ``leave_out``:
    top-level keys a method does not use (the simulation reference trains no network); ``optimizers``: the
    sections of `model` (pretrain, finetune, direct) whose networks the job trains; ``selection``: whether it
    selects models (`model.selection`; pretraining stops early on its own hold-out)."""
    keys = ["seed", "device", "input_kind", "descriptor", "grid", "qc", "model"]
    keys += ["multitask", "protocol"]
    not_training = ["chunk_size", "ensembles_per_job", "direct_baseline"]
    not_training += [] if EXCLUDE_TEST_PAIRS else ["trials"]
    unused = [o for o in ("pretrain", "finetune", "direct") if o not in optimizers]
    unused += [] if selection else ["selection"]
    return dict(
        property=property_slice,
        **slices(
            *(k for k in keys if k not in leave_out),
            drop={"protocol": not_training, "model": unused},
        ),
    )


def property_settings(prop):
    """The config entry of one property, its table paths resolved."""
    entry = copy.deepcopy(config["properties"][prop])
    for side in ("source", "target"):
        entry[side]["path"] = table_path(
            entry[side]["path"], DATA
        )  # `{data}`: data.dir
    return entry


def property_slice(wildcards):
    return property_settings(wildcards.property)


def all_properties(wildcards=None):
    """The `properties` slice of the rules that read every property (the study's tables and report)."""
    return {prop: property_settings(prop) for prop in PROPERTIES}


def raw_source(raw):
    """The pin of a raw file (repository, commit, path, sha256): a fetch job's params."""
    pin = RAW_FILES[raw]
    return {
        "repository": pin.repository,
        "commit": pin.commit,
        "path": pin.path,
        "sha256": pin.sha256,
    }


def chunk_trial_indices(wildcards):
    """The trials of a training job's chunk: its param instead of the trial count and chunk size, so that
    adding trials (more chunks) reruns no finished chunk, while a new chunk size reruns every chunk.
    """
    return chunk_trials(config, int(wildcards.get("chunk", 0)))


# ---- grids and priorities ----------------------------------------------------------------------------------
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
        n_indices = [
            int(wildcards.get("n_index", 0))
        ]  # multitask jobs: one n; direct: none (0)
    return len(n_indices) * m_values + 0.5 * n_indices[-1] / max(1, len(N_INDEX) - 1)


# the analysis of a property starts as soon as its trials are done, ahead of any training job still waiting
ANALYSIS_PRIORITY = 1000


# ---- file names --------------------------------------------------------------------------------------------
def prepared(prop, name):
    """A prepared table of one property (cleaned source/target, transform, grid)."""
    return f"{R}/prepared/{prop}/{name}"


def design_inputs(prop="{property}"):
    """Every file a training job reads: the prepared tables, the descriptors, the design (named inputs)."""
    return {
        "source": prepared(prop, "source.csv"),
        "target": prepared(prop, "target.csv"),
        "descriptors": f"{R}/features/descriptors.npz",
        "design": prepared(prop, "design.json"),
    }


def pretrained_file(prop="{property}", block="{block}"):
    """The pretrained networks of a block of n."""
    return f"{R}/models/{prop}/{TRANSFER_METHOD}_n{block}.pt"


def trial_file(prop, method, chunk, block=None, kind="trials"):
    """The one place that names a training job's tables: ``<method>_n<block>_c<chunk>.<kind>.csv``
    (``<method>_c<chunk>`` for a method without n, the direct baseline)."""
    n_part = f"_n{block}" if block is not None else ""
    return f"{R}/trials/{prop}/{method}{n_part}_c{chunk}.{kind}.csv"


def trial_outputs(prop, method, chunk, block=None):
    return {
        kind: trial_file(prop, method, chunk, block, kind)
        for kind in ("trials", "groups", "materials")
    }


def trial_tables(prop, kind):
    """Every chunk table of one kind (trials, groups, materials) of a property: what `aggregate` pools (the
    transfer method at every block of n, the references direct and simulation)."""
    files = []
    for chunk in CHUNKS:
        c = 0 if SAVE_PRETRAINED else chunk
        files += [trial_file(prop, TRANSFER_METHOD, c, b, kind) for b in BLOCKS[prop]]
        if DIRECT:
            files.append(trial_file(prop, "direct", chunk, None, kind))
        files.append(trial_file(prop, "simulation", chunk, None, kind))
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
