# sim2real-scaling: measure, fit and use the scaling law of Sim2Real transfer learning.
# The rule files below are thin: every computation lives in the sim2real_scaling package.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/common.smk"


wildcard_constraints:
    property="|".join(PROPERTIES),
    n_index=r"\d+",
    block=r"\d+(-\d+)?",
    chunk=r"\d+",


include: "workflow/prepare.smk"
include: "workflow/train.smk"
include: "workflow/analyse.smk"
include: "workflow/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
