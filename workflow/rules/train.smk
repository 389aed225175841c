# Stage 2: the design of each property (usable rows, n and m grids, data QC), then the trials: one training job
# per (property, method, block of n, chunk of trials), each chunk one vectorised ensemble. Every method writes
# the same trial tables (file names: trial_file in common.smk): the transfer method (finetune, or multitask
# when `transfer: multitask`) at every n of its block, the references direct and simulation once per chunk.
# Every job reads the prepared tables, the descriptors and the design: all declared inputs. Jobs start longest
# first (priority), so that the cores finish together.


rule design:
    input:
        source=prepared("{property}", "source.csv"),
        target=prepared("{property}", "target.csv"),
        descriptors=f"{R}/features/descriptors.npz",
    output:
        design=prepared("{property}", "design.json"),
        qc=prepared("{property}", "qc.csv"),
    log:
        f"{LOGS}/design/{{property}}.log",
    conda:
        "../envs/sim2real.yaml"
    params:
        **training_slices("device", "model"),
    script:
        "../scripts/design.py"


if PRETRAIN_JOB:

    rule pretrain:
        input:
            **design_inputs(),
        output:
            pretrained_file(),
        log:
            f"{LOGS}/pretrain/{{property}}_n{{block}}.log",
        priority: 100  # every transfer chunk of this block waits for it
        conda:
            "../envs/sim2real.yaml"
        params:
            **training_slices("multitask", optimizers=["pretrain"], selection=False),
            n_indices=block_n_indices,
        script:
            "../scripts/pretrain.py"


# With one chunk per block the job pretrains first and saves its networks (its chunk is then always c0, a fixed
# part of the names, as all outputs of a job must have the same wildcards); with a pretrain job it loads them.
TRANSFER_CHUNK = 0 if SAVE_PRETRAINED else "{chunk}"


rule transfer:
    input:
        **design_inputs(),
        **({"pretrained": pretrained_file()} if PRETRAIN_JOB else {}),
    output:
        **trial_outputs("{property}", TRANSFER_METHOD, TRANSFER_CHUNK, "{block}"),
        **({"pretrained": pretrained_file()} if SAVE_PRETRAINED else {}),
    log:
        f"{LOGS}/{TRANSFER_METHOD}/{{property}}_n{{block}}_c{TRANSFER_CHUNK}.log",
    priority: training_priority
    conda:
        "../envs/sim2real.yaml"
    params:
        # fine-tuning: its pretraining and its own optimiser; multitask learning: its own section
        **(
            training_slices(optimizers=[])
            if MULTITASK
            else training_slices("multitask", optimizers=["pretrain", "finetune"])
        ),
        method=TRANSFER_METHOD,
        n_indices=block_n_indices,
        trials=chunk_trial_indices,
    script:
        "../scripts/train.py"


if DIRECT:

    rule direct:
        input:
            **design_inputs(),
        output:
            **trial_outputs("{property}", "direct", "{chunk}"),
        log:
            f"{LOGS}/direct/{{property}}_c{{chunk}}.log",
        priority: training_priority
        conda:
            "../envs/sim2real.yaml"
        params:
            # the multitask model of a pair study learns directly with its own section
            **(
                training_slices(optimizers=[])
                if MULTITASK
                else training_slices("multitask", optimizers=["direct"])
            ),
            method="direct",
            trials=chunk_trial_indices,
        script:
            "../scripts/train.py"


# The simulated value itself as a predictor (linearly recalibrated on each trial's training rows): no network,
# so neither the model nor the descriptors concern it.
rule simulation:
    input:
        **design_inputs(),
    output:
        **trial_outputs("{property}", "simulation", "{chunk}"),
    log:
        f"{LOGS}/simulation/{{property}}_c{{chunk}}.log",
    priority: training_priority
    conda:
        "../envs/sim2real.yaml"
    params:
        **training_slices("model", "multitask", "descriptor", "device"),
        method="simulation",
        trials=chunk_trial_indices,
    script:
        "../scripts/train.py"
