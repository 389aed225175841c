# Stage 3: trial MAEs -> summary with bootstrap CIs -> fitted scaling laws.


rule aggregate:
    input:
        trials=all_chunk_files("trials"),
        groups=all_chunk_files("groups"),
        materials=all_chunk_files("materials"),
    output:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        groups=f"{R}/group_trials.csv",
        materials=f"{R}/material_errors.csv",
    log:
        f"{LOGS}/aggregate.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/aggregate.py"


rule fit:
    input:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        groups=f"{R}/group_trials.csv",
    output:
        fits=f"{R}/fits.json",
        figures=directory(f"{R}/figures"),
    log:
        f"{LOGS}/fit.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fit.py"


# Case study 3 (config wiedemann_franz): WF / non-WF classes, per-compound scaling and their figures.
if config.get("wiedemann_franz"):

    rule wiedemann_franz:
        input:
            targets=expand(f"{R}/prepared/{{property}}/target.csv", property=PROPERTIES),
            summary=f"{R}/summary.csv",
            groups=f"{R}/group_trials.csv",
            materials=f"{R}/material_errors.csv",
            fits=f"{R}/fits.json",
        output:
            json=f"{R}/wiedemann_franz/summary.json",
            compounds=f"{R}/wiedemann_franz/per_compound.csv",
            figures=directory(f"{R}/wiedemann_franz/figures"),
        log:
            f"{LOGS}/wiedemann_franz.log",
        conda:
            "../envs/sim2real.yaml"
        script:
            "../scripts/wiedemann_franz.py"
