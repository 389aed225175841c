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
