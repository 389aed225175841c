# Stage 0: the case studies' public data (`{data}` in their table paths = config data.dir, by default the folder
# these rules fill). Each raw file is downloaded from its original repository pinned to a commit and checked
# against its sha256 (fetch_raw); the tidy tables the configs read are derived from it with the package's code
# (fetch_chi, fetch_starrydata, fetch_radonpy). `snakemake fetch_data` fetches everything. Offline, point
# data.dir at a folder that already holds the tidy tables: nothing is then downloaded.


rule fetch_raw:
    output:
        f"{FETCHED}/{{raw}}",
    log:
        f"logs/fetch/{{raw}}.log",
    localrule: True
    conda:
        "../envs/sim2real.yaml"
    params:
        source=lambda wc: raw_source(wc.raw),
    script:
        "../scripts/fetch.py"


rule fetch_chi:
    input:
        chi=f"{FETCHED}/chi/raw/data_Chi.csv",
        cosmo=f"{FETCHED}/chi/raw/data_COSMO.csv",
    output:
        experimental=f"{FETCHED}/chi/chi_experimental.csv",
        cosmors=f"{FETCHED}/chi/chi_cosmors.csv",
    log:
        "logs/fetch/chi.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fetch.py"


rule fetch_starrydata:
    input:
        curves=f"{FETCHED}/starrydata/raw/20190711_preprocessing_interpolated_data.csv",
    output:
        thermal=f"{FETCHED}/starrydata/thermal_conductivity_300K.csv",
        electrical=f"{FETCHED}/starrydata/electrical_conductivity_300K.csv",
    log:
        "logs/fetch/starrydata.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fetch.py"


rule fetch_radonpy:
    input:
        pi1070=f"{FETCHED}/polymer/raw/radonpy_PI1070.csv",
    output:
        **{
            prop: f"{FETCHED}/polymer/sim_radonpy_pi1070_{prop}.csv"
            for prop in RADONPY_PROPERTIES
        },
    log:
        "logs/fetch/radonpy.log",
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fetch.py"


# The polymer study's experimental tables cannot be fetched (see config/polymer.yaml): this rule only says so.
rule fetch_polymer_experimental:
    output:
        f"{FETCHED}/polymer/exp_merged_{{prop}}.csv",
    log:
        "logs/fetch/polymer_experimental_{prop}.log",
    localrule: True
    conda:
        "../envs/sim2real.yaml"
    script:
        "../scripts/fetch.py"


rule fetch_data:
    default_target: False
    input:
        [f"{FETCHED}/{table}" for dataset in FETCHABLE for table in FETCHABLE[dataset]],
    localrule: True
