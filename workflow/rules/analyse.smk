# Stage 3: trial MAEs -> summary with bootstrap CIs -> fitted scaling laws, per property: a property is
# analysed as soon as its own trials are done, beside the training of the others; collect then assembles
# the study's tables, fits.json and figures/ from the properties' (the files the report and users read).
# A property's summary table, fits and figures are registered for the native report
# (`snakemake --report report.zip`), one category per property.


rule aggregate:
    input:
        trials=lambda wc: trial_tables(wc.property, "trials"),
        groups=lambda wc: trial_tables(wc.property, "groups"),
        materials=lambda wc: trial_tables(wc.property, "materials"),
        design=prepared("{property}", "design.json"),  # which trials of which (method, n, m) must be there
    output:
        trials=analysis("{property}", "trials.csv"),
        summary=report(
            analysis("{property}", "summary.csv"),
            caption="../report/summary.rst",
            category="{property}",
            subcategory="tables",
            labels={
                "property": "{property}",
                "table": "summary (mean MAE per method, n, m)",
            },
        ),
        groups=analysis("{property}", "group_trials.csv"),
        materials=analysis("{property}", "material_errors.csv"),
    log:
        f"{LOGS}/aggregate/{{property}}.log",
    priority: ANALYSIS_PRIORITY
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices("seed", "analysis", "protocol", "transfer"),
        property=property_slice,
    script:
        "../scripts/aggregate.py"


rule fit:
    input:
        trials=analysis("{property}", "trials.csv"),
        summary=analysis("{property}", "summary.csv"),
        groups=analysis("{property}", "group_trials.csv"),
    output:
        fits=report(
            analysis("{property}", "fits.json"),
            caption="../report/fits.rst",
            category="{property}",
            subcategory="tables",
            labels={
                "property": "{property}",
                "table": "fits (every fitted law, unrounded)",
            },
        ),
        figures=report(
            directory(analysis("{property}", "figures")),
            patterns=["{name}.png"],
            caption="../report/figure.rst",
            category="{property}",
            subcategory="figures",
            labels={"property": "{property}", "figure": "{name}"},
        ),
    log:
        f"{LOGS}/fit/{{property}}.log",
    priority: ANALYSIS_PRIORITY
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices("study", "seed", "source_label", "analysis", "grid", "protocol"),
        property=property_slice,
    script:
        "../scripts/fit.py"


rule collect:
    input:
        trials=expand(analysis("{property}", "trials.csv"), property=PROPERTIES),
        summary=expand(analysis("{property}", "summary.csv"), property=PROPERTIES),
        groups=expand(analysis("{property}", "group_trials.csv"), property=PROPERTIES),
        materials=expand(
            analysis("{property}", "material_errors.csv"), property=PROPERTIES
        ),
        fits=expand(analysis("{property}", "fits.json"), property=PROPERTIES),
        figures=expand(analysis("{property}", "figures"), property=PROPERTIES),
    output:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        groups=f"{R}/group_trials.csv",
        materials=f"{R}/material_errors.csv",
        fits=f"{R}/fits.json",
        figures=directory(f"{R}/figures"),
    log:
        f"{LOGS}/collect.log",
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices("study"),
        properties=all_properties(),
    script:
        "../scripts/collect.py"


# Case study 3 (config wiedemann_franz): WF / non-WF classes, per-compound scaling and their figures.
if config.get("wiedemann_franz"):

    rule wiedemann_franz:
        input:
            targets=expand(prepared("{property}", "target.csv"), property=PROPERTIES),
            summary=f"{R}/summary.csv",
            groups=f"{R}/group_trials.csv",
            materials=f"{R}/material_errors.csv",
            fits=f"{R}/fits.json",
        output:
            json=f"{R}/wiedemann_franz/summary.json",
            compounds=f"{R}/wiedemann_franz/per_compound.csv",
            figures=report(
                directory(f"{R}/wiedemann_franz/figures"),
                patterns=["{name}.png"],
                caption="../report/wiedemann_franz.rst",
                category="Wiedemann-Franz classes",
                labels={"figure": "{name}"},
            ),
        log:
            f"{LOGS}/wiedemann_franz.log",
        conda:
            "../envs/sim2real.yaml"
        params:
            **slices("seed", "analysis", "wiedemann_franz"),
            properties=all_properties(),
        script:
            "../scripts/wiedemann_franz.py"
