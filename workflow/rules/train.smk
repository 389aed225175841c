# Stage 2: pretraining and trial chunks (transfer and direct), each a vectorised ensemble. A transfer job
# trains the n of one block (BLOCKS: consecutive n, protocol.ensembles_per_job). Jobs start longest first
# (priority), so that the cores finish together.


if not PRETRAIN_IN_TRANSFER_JOB:

    rule pretrain:
        input:
            grid=f"{R}/prepared/{{property}}/grid.json",
            source=f"{R}/prepared/{{property}}/source.csv",
            target=f"{R}/prepared/{{property}}/target.csv",
            descriptors=f"{R}/features/descriptors.npz",
        output:
            f"{R}/models/{{property}}/pretrain_n{{block}}.pt",
        params:
            n_indices=block_n_indices,
        log:
            f"{LOGS}/pretrain/{{property}}_n{{block}}.log",
        priority: 100  # every transfer chunk of this block waits for it,
        conda:
            "../envs/sim2real.yaml"
        script:
            "../scripts/pretrain.py"


# With one chunk per block the job pretrains first (source rows in, the pretrained networks out too; the chunk
# is then always c0, a fixed part of the names, as all outputs of a job must have the same wildcards);
# otherwise it loads the network of the pretrain job above.
TRANSFER_CHUNK = "c0" if PRETRAIN_IN_TRANSFER_JOB else "c{chunk}"


rule transfer:
    input:
        grid=f"{R}/prepared/{{property}}/grid.json",
        target=f"{R}/prepared/{{property}}/target.csv",
        descriptors=f"{R}/features/descriptors.npz",
        **(
            {"source": f"{R}/prepared/{{property}}/source.csv"}
            if PRETRAIN_IN_TRANSFER_JOB
            else {"pretrained": f"{R}/models/{{property}}/pretrain_n{{block}}.pt"}
        ),
    output:
        **trial_outputs(f"{R}/trials/{{property}}/transfer_n{{block}}_{TRANSFER_CHUNK}"),
        **({"pretrained": f"{R}/models/{{property}}/pretrain_n{{block}}.pt"} if PRETRAIN_IN_TRANSFER_JOB else {}),
    params:
        n_indices=block_n_indices,
    log:
        f"{LOGS}/transfer/{{property}}_n{{block}}_{TRANSFER_CHUNK}.log",
    priority: training_priority,
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/trials.py"


rule direct:
    input:
        grid=f"{R}/prepared/{{property}}/grid.json",
        target=f"{R}/prepared/{{property}}/target.csv",
        descriptors=f"{R}/features/descriptors.npz",
    output:
        **trial_outputs(f"{R}/trials/{{property}}/direct_c{{chunk}}"),
    log:
        f"{LOGS}/direct/{{property}}_c{{chunk}}.log",
    priority: training_priority,
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/trials.py"


# Multitask learning (transfer: multitask, the chi study): no pretraining; each transfer job trains the
# joint model on n simulated rows + the trial's experimental rows, and writes the same outputs as above.
if config["transfer"] == "multitask":

    ruleorder: multitask > transfer
    ruleorder: multitask_direct > direct

    rule multitask:
        input:
            grid=f"{R}/prepared/{{property}}/grid.json",
            source=f"{R}/prepared/{{property}}/source.csv",
            target=f"{R}/prepared/{{property}}/target.csv",
            descriptors=f"{R}/features/descriptors.npz",
        output:
            **trial_outputs(f"{R}/trials/{{property}}/transfer_n{{n_index}}_c{{chunk}}"),
        log:
            f"{LOGS}/multitask/{{property}}_n{{n_index}}_c{{chunk}}.log",
        priority: training_priority,
        conda:
            "../envs/sim2real.yaml"
        script:
            "../scripts/multitask.py"

    rule multitask_direct:
        input:
            grid=f"{R}/prepared/{{property}}/grid.json",
            source=f"{R}/prepared/{{property}}/source.csv",
            target=f"{R}/prepared/{{property}}/target.csv",
            descriptors=f"{R}/features/descriptors.npz",
        output:
            **trial_outputs(f"{R}/trials/{{property}}/direct_c{{chunk}}"),
        log:
            f"{LOGS}/multitask/{{property}}_direct_c{{chunk}}.log",
        priority: training_priority,
        conda:
            "../envs/sim2real.yaml"
        script:
            "../scripts/multitask.py"
