# Stage 3: trial MAEs -> summary with bootstrap CIs -> fitted scaling laws, per property: a property is
# analysed as soon as its own trials are done, beside the training of the others; collect then assembles
# the study's tables, fits.json and figures/ from the properties' (the files the report and users read).


rule aggregate:
    input:
        trials=lambda wc: chunk_files(wc.property, "trials"),
        groups=lambda wc: chunk_files(wc.property, "groups"),
        materials=lambda wc: chunk_files(wc.property, "materials"),
    output:
        trials=analysis("{property}", "trials.csv"),
        summary=analysis("{property}", "summary.csv"),
        groups=analysis("{property}", "group_trials.csv"),
        materials=analysis("{property}", "material_errors.csv"),
    log:
        f"{LOGS}/aggregate/{{property}}.log",
    priority: ANALYSIS_PRIORITY
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/aggregate.py"


rule fit:
    input:
        trials=analysis("{property}", "trials.csv"),
        summary=analysis("{property}", "summary.csv"),
        groups=analysis("{property}", "group_trials.csv"),
    output:
        fits=analysis("{property}", "fits.json"),
        figures=directory(analysis("{property}", "figures")),
    log:
        f"{LOGS}/fit/{{property}}.log",
    priority: ANALYSIS_PRIORITY
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fit.py"


rule collect:
    input:
        trials=expand(analysis("{property}", "trials.csv"), property=PROPERTIES),
        summary=expand(analysis("{property}", "summary.csv"), property=PROPERTIES),
        groups=expand(analysis("{property}", "group_trials.csv"), property=PROPERTIES),
        materials=expand(analysis("{property}", "material_errors.csv"), property=PROPERTIES),
        fits=expand(analysis("{property}", "fits.json"), property=PROPERTIES),
        figures=expand(analysis("{property}", "figures"), property=PROPERTIES),
    output:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        groups=f"{R}/group_trials.csv",
        materials=f"{R}/material_errors.csv",
        fits=f"{R}/fits.json",
        figures=directory(f"{R}/figures"),
    params:
        properties=PROPERTIES,
    log:
        f"{LOGS}/collect.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/collect.py"


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
