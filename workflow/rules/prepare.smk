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
        params:
            **slices("seed", "synthetic"),
        script:
            "../scripts/synthesize.py"


rule prepare:
    input:
        source=lambda wc: property_settings(wc.property)["source"]["path"],
        target=lambda wc: property_settings(wc.property)["target"]["path"],
    output:
        source=prepared("{property}", "source.csv"),
        target=prepared("{property}", "target.csv"),
        rejected=prepared("{property}", "rejected.csv"),
        transform=prepared("{property}", "transform.json"),
        grid=prepared("{property}", "grid.json"),
        checks=prepared("{property}", "checks.json"),
    log:
        f"{LOGS}/prepare/{{property}}.log",
        # the rejected rows also in a file that outlives a failed job (prepare fails on purpose when too
        # many rows are rejected, and Snakemake then deletes its outputs)
        rejected=f"{LOGS}/prepare/{{property}}.rejected.csv",
    conda:
        "../envs/sim2real.yaml"
    params:
        **prepare_slices(),
        property=property_slice,
    script:
        "../scripts/prepare.py"


rule featurize:
    input:
        tables=expand(
            prepared("{property}", "{table}.csv"),
            property=PROPERTIES,
            table=["source", "target"],
        ),
    output:
        descriptors=f"{R}/features/descriptors.npz",
        failed=f"{R}/features/failed.csv",
    log:
        f"{LOGS}/featurize.log",
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices("descriptor"),
        study_cache=f"{R}/features/cache.npz",
    script:
        "../scripts/featurize.py"


# The resolved config (the record of the run: its params are the whole config, so it is rewritten whenever
# any part of the config changes) and the library versions.
rule record_run:
    output:
        config=f"{R}/run/config.resolved.yaml",
        environment=f"{R}/run/environment.json",
    log:
        f"{LOGS}/record_run.log",
    conda:
        "../envs/sim2real.yaml"
    params:
        config=copy.deepcopy(config),
    script:
        "../scripts/record_run.py"
