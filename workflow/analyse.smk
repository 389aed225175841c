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
