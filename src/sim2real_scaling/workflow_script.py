"""Glue for the scripts that Snakemake rules call: logging into the rule's log file, threads, clean errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from sim2real_scaling.config import ConfigError
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.transforms import TransformError

# errors caused by the user's input or config: reported in one line, without a traceback
USER_ERRORS = (ConfigError, DataError, DescriptorError, TransformError)


def setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)


def run(snakemake: Any, stage: Callable[[dict[str, Any]], None]) -> None:
    """Run ``stage(config)`` inside a Snakemake ``script:`` job."""
    log_file = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(log_file)
    from sim2real_scaling.stages import StudyIncomplete, set_threads

    set_threads(snakemake.threads)
    start = time.perf_counter()
    try:
        stage(dict(snakemake.config))
        # the stage's own time, after start-up and imports (benchmarks/study_walltime.py reads this line)
        logging.getLogger("sim2real_scaling").info("rule %s: stage done in %.2f s", snakemake.rule,
                                                   time.perf_counter() - start)
    except (*USER_ERRORS, StudyIncomplete) as exc:
        # one line, no traceback: the last line of the rule's log (the path Snakemake prints) says what is wrong
        logging.getLogger("sim2real_scaling").error("%s", " ".join(str(exc).split()))
        sys.exit(1)
    except Exception:
        logging.getLogger("sim2real_scaling").exception("unexpected error in rule %s", snakemake.rule)
        raise
