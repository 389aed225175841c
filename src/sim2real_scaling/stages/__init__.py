"""One function per workflow stage: what each Snakemake rule calls (through its script).

Each stage takes settings and plain paths, reads files, calls the package and writes its outputs
atomically. Nothing here knows about Snakemake, so stages are unit-testable and usable from a notebook.
The stages of each layer live in their own module (prepare, train, analyse, run).
"""

from sim2real_scaling.stages.analyse import (StudyIncomplete, stage_aggregate, stage_analyse, stage_check_study,
                                             stage_collect, stage_report)
from sim2real_scaling.stages.prepare import stage_featurize, stage_prepare, stage_synthesize
from sim2real_scaling.stages.run import environment_record, set_threads, stage_record_run
from sim2real_scaling.stages.train import stage_design, stage_pretrain, stage_train

__all__ = ["StudyIncomplete", "environment_record", "set_threads", "stage_aggregate", "stage_analyse",
           "stage_check_study", "stage_collect", "stage_design", "stage_featurize", "stage_prepare",
           "stage_pretrain", "stage_record_run", "stage_report", "stage_synthesize", "stage_train"]
