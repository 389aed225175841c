# Stage 4: the study's report page, and the last check. The figures and tables themselves are registered
# for Snakemake's native report by the rules that write them (analyse.smk); `snakemake --report report.zip`
# gathers them with the study page below, the workflow's code, config and software versions.


rule report:
    input:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        fits=f"{R}/fits.json",
        figures=f"{R}/figures",
        rejected=expand(prepared("{property}", "rejected.csv"), property=PROPERTIES),
        checks=expand(prepared("{property}", "checks.json"), property=PROPERTIES),
        qc=expand(prepared("{property}", "qc.csv"), property=PROPERTIES),
        groups=f"{R}/group_trials.csv",
        grids=expand(prepared("{property}", "grid.json"), property=PROPERTIES),
        environment=f"{R}/run/environment.json",
    output:
        html=report(
            f"{R}/report.html",
            caption="../report/study.rst",
            category="Study",
            labels={"page": "the study's report page"},
        ),
        markdown=f"{R}/report.md",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices(
            "study",
            "seed",
            "source_label",
            "input_kind",
            "transfer",
            "descriptor",
            "grid",
            "protocol",
            "model",
            "multitask",
            "analysis",
            *(
                ["synthetic"] if "synthetic" in config else []
            ),  # the synthetic-data banner
        ),
        properties=all_properties(),
    script:
        "../scripts/report.py"


# The last step: fails (exit status 1, the problems on the last line of its log) when trials diverged or a fit
# failed, after everything else finished and the report was written; writes complete.json otherwise.
rule check_study:
    input:
        trials=f"{R}/trials.csv",
        fits=f"{R}/fits.json",
        report=f"{R}/report.html",
    output:
        f"{R}/complete.json",
    log:
        f"{LOGS}/check_study.log",
    localrule: True
    conda:
        "../envs/sim2real.yaml"
    params:
        **slices("study"),
    script:
        "../scripts/check_study.py"
