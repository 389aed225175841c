# Stage 1: input tables -> cleaned, transformed tables and descriptors.


if "synthetic" in config:

    rule synthesize:
        output:
            source=config["synthetic"]["source_path"],
            target=config["synthetic"]["target_path"],
        log:
            f"{LOGS}/synthesize.log",
        conda:
            "../envs/sim2real.yaml"
        script:
            "../scripts/synthesize.py"


rule prepare:
    input:
        source=lambda wc: config["properties"][wc.property]["source"]["path"],
        target=lambda wc: config["properties"][wc.property]["target"]["path"],
    output:
        source=f"{R}/prepared/{{property}}/source.csv",
        target=f"{R}/prepared/{{property}}/target.csv",
        rejected=f"{R}/prepared/{{property}}/rejected.csv",
        transform=f"{R}/prepared/{{property}}/transform.json",
        grid=f"{R}/prepared/{{property}}/grid.json",
    log:
        f"{LOGS}/prepare/{{property}}.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/prepare.py"


rule featurize:
    input:
        tables=expand(
            f"{R}/prepared/{{property}}/{{table}}.csv",
            property=PROPERTIES,
            table=["source", "target"],
        ),
    output:
        descriptors=f"{R}/features/descriptors.npz",
        failed=f"{R}/features/failed.csv",
    params:
        study_cache=f"{R}/features/cache.npz",
    log:
        f"{LOGS}/featurize.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/featurize.py"


rule record_run:
    output:
        config=f"{R}/run/config.resolved.yaml",
        environment=f"{R}/run/environment.json",
    log:
        f"{LOGS}/record_run.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/record_run.py"
