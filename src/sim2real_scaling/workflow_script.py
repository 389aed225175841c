"""Glue for the scripts that Snakemake rules call: the config slices a rule declares, logging into the rule's
log file, threads, clean errors."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from sim2real_scaling.config import ConfigError, load_schema
from sim2real_scaling.data.clean import DataError
from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.transforms import TransformError

# errors caused by the user's input or config: reported in one line, without a traceback
USER_ERRORS = (ConfigError, DataError, DescriptorError, TransformError)
DEBUG_VARIABLE = "SIM2REAL_DEBUG"  # set to 1 for the traceback of an unexpected error


def config_slices(snakemake: Any) -> dict[str, Any]:
    """The config a rule declared as params, as a dict for its stage: one entry per top-level config key the
    rule named, and the job's own property (param ``property``) both as ``property`` and as
    ``properties: {<name>: ...}``. Other params (``n_indices``, ``trials``, ...) are not config and stay out.
    """
    if getattr(snakemake, "params", None) is None:  # a stand-in for Snakemake's object (tests): its `config`
        return dict(snakemake.config)
    keys = set(load_schema()["properties"])
    params = dict(snakemake.params.items())
    settings = {key: value for key, value in params.items() if key in keys}
    if "property" in params:
        name = snakemake.wildcards.property
        settings["property"] = params["property"]
        settings.setdefault("properties", {name: params["property"]})
    return settings


def setup_logging(log_file: str | None) -> None:
    """Log to the rule's log file and to stderr. With a log file, errors go to the file only: Snakemake prints
    a failed job's log (show-failed-logs), so the error line reaches the screen once, as the log's last line."""
    screen = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [screen]
    if log_file:
        screen.addFilter(lambda record: record.levelno < logging.ERROR)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)


def run(snakemake: Any, stage: Callable[[dict[str, Any]], None]) -> None:
    """Run ``stage(settings)`` inside a Snakemake ``script:`` job, ``settings`` being the config slices the rule
    declares as params (:func:`config_slices`); never the whole config."""
    log_file = snakemake.log[0] if len(snakemake.log) else None
    setup_logging(log_file)
    from sim2real_scaling.stages import StudyIncomplete, set_threads

    set_threads(snakemake.threads)
    logger = logging.getLogger("sim2real_scaling")
    start = time.perf_counter()
    try:
        stage(config_slices(snakemake))
        # the stage's own time, after start-up and imports (benchmarks/study_walltime.py reads this line)
        logger.info("rule %s: stage done in %.2f s", snakemake.rule, time.perf_counter() - start)
    except (*USER_ERRORS, StudyIncomplete) as exc:
        # one line, no traceback: the last line of the rule's log (the path Snakemake prints) says what is wrong
        logger.error("%s", " ".join(str(exc).split()))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - every unexpected error: one line, the traceback on request
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            logger.exception("unexpected error in rule %s", snakemake.rule)
        else:
            logger.error("unexpected error in rule %s: %s: %s (set %s=1 for the traceback)", snakemake.rule,
                         type(exc).__name__, " ".join(str(exc).split()), DEBUG_VARIABLE)
        sys.exit(1)
