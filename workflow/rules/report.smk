# Stage 4: figures and the report page.


rule report:
    input:
        trials=f"{R}/trials.csv",
        summary=f"{R}/summary.csv",
        fits=f"{R}/fits.json",
        figures=f"{R}/figures",
        rejected=expand(f"{R}/prepared/{{property}}/rejected.csv", property=PROPERTIES),
        groups=f"{R}/group_trials.csv",
        grids=expand(f"{R}/prepared/{{property}}/grid.json", property=PROPERTIES),
        environment=f"{R}/run/environment.json",
    output:
        html=f"{R}/report.html",
        markdown=f"{R}/report.md",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/sim2real.yaml"
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
    script:
        "../scripts/check_study.py"
